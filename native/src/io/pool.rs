//! The slot pool: fixed-size packet buffers in one arena, each with headroom in front so a header
//! can be prepended in place, each owned by one party at a time. A reader takes free slots for a
//! batch; after the batch the slots JS did not hold go back; a held slot returns when released.
//! The free list is a LIFO stack, so the next batch reuses the slots (and cache lines) just freed.

use std::fmt;

/// M_SLOT of a record whose frame does not lie in a pool slot (parsed from a caller's buffer).
pub const NO_SLOT: u32 = u32::MAX;
/// Slot starts and headroom are multiples of a cache line.
const SLOT_ALIGN: usize = 64;
pub const MAX_POOL_SLOTS: usize = 1 << 16;
/// Bounds the arena (and keeps every absolute offset inside an i32 for the write descriptors).
pub const MAX_POOL_BYTES: usize = 1 << 30;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owner {
    Free,
    Batch,
    Held,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PoolError {
    NoSuchSlot(u32),
    /// hold() of a slot that is not in the current batch.
    NotInBatch(u32),
    /// release() of a slot that is not held: released twice, or never held.
    NotHeld(u32),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::NoSuchSlot(s) => write!(f, "slot {s} is not in this pool"),
            PoolError::NotInBatch(s) => write!(f, "slot {s} is not part of the batch being processed"),
            PoolError::NotHeld(s) => write!(f, "slot {s} is not held (released twice?)"),
        }
    }
}

pub struct Pool {
    free: Vec<u32>,
    owner: Vec<Owner>,
    held: usize,
    stride: usize,
    headroom: usize,
    capacity: usize,
    /// Times a reader found the pool empty and paused.
    pub stalls: u64,
}

fn align_up(n: usize) -> usize {
    n.div_ceil(SLOT_ALIGN) * SLOT_ALIGN
}

impl Pool {
    /// `slots` buffers of `capacity` bytes, each behind `headroom` bytes (rounded up to 64).
    pub fn new(slots: usize, headroom: usize, capacity: usize) -> Result<Pool, String> {
        if slots == 0 || slots > MAX_POOL_SLOTS {
            return Err(format!("pool: slots must be in [1, {MAX_POOL_SLOTS}], got {slots}"));
        }
        if headroom > 4096 || !(64..=1 << 20).contains(&capacity) {
            return Err("pool: headroom must be <= 4096 and capacity in [64, 1 MiB]".into());
        }
        let headroom = align_up(headroom);
        let stride = align_up(headroom + capacity);
        if slots * stride > MAX_POOL_BYTES {
            return Err(format!("pool: {slots} slots of {stride} bytes exceed {MAX_POOL_BYTES} bytes"));
        }
        // Reversed so slot 0 is taken first.
        let free = (0..slots as u32).rev().collect();
        Ok(Pool { free, owner: vec![Owner::Free; slots], held: 0, stride, headroom, capacity, stalls: 0 })
    }

    pub fn slots(&self) -> usize {
        self.owner.len()
    }
    pub fn stride(&self) -> usize {
        self.stride
    }
    pub fn headroom(&self) -> usize {
        self.headroom
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    pub fn bytes(&self) -> usize {
        self.stride * self.slots()
    }
    pub fn free_count(&self) -> usize {
        self.free.len()
    }
    pub fn held_count(&self) -> usize {
        self.held
    }

    /// Absolute arena offset where slot `slot`'s data (after its headroom) starts.
    #[inline]
    pub fn data_offset(&self, slot: u32) -> usize {
        slot as usize * self.stride + self.headroom
    }

    /// A free slot for the batch being read, or None when the pool is empty.
    #[inline]
    pub fn take(&mut self) -> Option<u32> {
        let s = self.free.pop()?;
        self.owner[s as usize] = Owner::Batch;
        Some(s)
    }

    /// After a batch: its slots that were not held become free again.
    #[inline]
    pub fn finish_batch(&mut self, slots: &[u32]) {
        for &s in slots {
            if self.owner.get(s as usize) == Some(&Owner::Batch) {
                self.owner[s as usize] = Owner::Free;
                self.free.push(s);
            }
        }
    }

    /// Keeps a slot of the current batch past the batch (a queue, a tunnel): JS owns it until release.
    pub fn hold(&mut self, slot: u32) -> Result<(), PoolError> {
        match self.owner.get(slot as usize) {
            None => Err(PoolError::NoSuchSlot(slot)),
            Some(Owner::Batch) => {
                self.owner[slot as usize] = Owner::Held;
                self.held += 1;
                Ok(())
            }
            Some(_) => Err(PoolError::NotInBatch(slot)),
        }
    }

    /// Returns a held slot to the pool.
    pub fn release(&mut self, slot: u32) -> Result<(), PoolError> {
        match self.owner.get(slot as usize) {
            None => Err(PoolError::NoSuchSlot(slot)),
            Some(Owner::Held) => {
                self.owner[slot as usize] = Owner::Free;
                self.held -= 1;
                self.free.push(slot);
                Ok(())
            }
            Some(_) => Err(PoolError::NotHeld(slot)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(p: &mut Pool, n: usize) -> Vec<u32> {
        (0..n).map_while(|_| p.take()).collect()
    }

    #[test]
    fn geometry_has_aligned_headroom_and_bounds_memory() {
        let p = Pool::new(4, 50, 65600).unwrap();
        assert_eq!((p.headroom(), p.capacity()), (64, 65600));
        assert_eq!(p.stride() % 64, 0);
        assert!(p.stride() >= 64 + 65600);
        assert_eq!(p.data_offset(3), 3 * p.stride() + 64);
        assert!(Pool::new(0, 64, 65600).is_err());
        assert!(Pool::new(MAX_POOL_SLOTS, 64, 65600).err().unwrap().contains("exceed"));
        assert!(Pool::new(8, 64, 10).is_err());
    }

    #[test]
    fn exhaustion_and_return_of_unheld_slots() {
        let mut p = Pool::new(3, 64, 128).unwrap();
        let b = batch(&mut p, 8);
        assert_eq!(b, vec![0, 1, 2]);
        assert_eq!(p.take(), None);
        p.hold(b[1]).unwrap();
        p.finish_batch(&b);
        assert_eq!((p.free_count(), p.held_count()), (2, 1));
        // The held slot is not handed out again until it is released.
        let b2 = batch(&mut p, 8);
        assert_eq!(b2.len(), 2);
        assert!(!b2.contains(&1));
        p.finish_batch(&b2);
        p.release(1).unwrap();
        assert_eq!((p.free_count(), p.held_count()), (3, 0));
        // LIFO: the slot released last is reused first.
        assert_eq!(p.take(), Some(1));
    }

    #[test]
    fn double_release_and_bad_holds_are_errors() {
        let mut p = Pool::new(2, 64, 128).unwrap();
        let s = p.take().unwrap();
        assert_eq!(p.release(s), Err(PoolError::NotHeld(s)));
        p.hold(s).unwrap();
        assert_eq!(p.hold(s), Err(PoolError::NotInBatch(s)));
        p.release(s).unwrap();
        assert_eq!(p.release(s), Err(PoolError::NotHeld(s)));
        assert_eq!(p.hold(s), Err(PoolError::NotInBatch(s)));
        assert_eq!(p.release(7), Err(PoolError::NoSuchSlot(7)));
        assert_eq!(p.hold(u32::MAX), Err(PoolError::NoSuchSlot(u32::MAX)));
        assert!(p.release(s).unwrap_err().to_string().contains("released twice"));
        // A slot released during its batch is not freed a second time by finish_batch.
        let t = p.take().unwrap();
        p.hold(t).unwrap();
        p.release(t).unwrap();
        p.finish_batch(&[t]);
        assert_eq!(p.free_count(), 2);
    }
}
