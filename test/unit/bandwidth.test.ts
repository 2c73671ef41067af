// The bandwidth annotation's quantities, the rate text of `bpf bandwidth list`, and the horizon's duration.
import { describe, expect, it } from 'vitest';
import { bandwidthAnnotationProblem, parseBandwidth, parseQuantity } from '../../src/control/bandwidth.ts';
import { durationMs } from '../../src/control/config.ts';
import { formatBitRate } from '../../src/maps/cilium/throttle.ts';

describe('bandwidth manager control', () => {
  it('reads Kubernetes quantities as bits per second', () => {
    expect(parseQuantity('10M')).toBe(10e6);
    expect(parseQuantity('500k')).toBe(500e3);
    expect(parseQuantity('1G')).toBe(1e9);
    expect(parseQuantity('2.5M')).toBe(2.5e6);
    expect(parseQuantity('1Mi')).toBe(1048576);
    expect(parseQuantity('1e6')).toBe(1e6);
    expect(parseQuantity('10')).toBe(10);
    for (const bad of ['10Mb', 'ten', '', 'M', '10 M', '1K']) expect(parseQuantity(bad), bad).toBeUndefined();
  });

  it('accepts 1k .. 1P and says why not otherwise', () => {
    expect(parseBandwidth('10M')).toEqual({ bitsPerSec: 10e6 });
    expect(parseBandwidth('10Mbit')).toEqual({ error: '"10Mbit" is not a quantity (e.g. 10M, 500k, 2.5M, 1G: bits per second)' });
    expect(parseBandwidth('100')).toEqual({ error: '"100" is unreasonably small (< 1k bits per second)' });
    expect(parseBandwidth('2E')).toEqual({ error: '"2E" is unreasonably large (> 1P bits per second)' });
  });

  it('names the annotation that is wrong; ingress is refused', () => {
    expect(bandwidthAnnotationProblem({ 'kubernetes.io/egress-bandwidth': '10M' })).toBeUndefined();
    expect(bandwidthAnnotationProblem(undefined)).toBeUndefined();
    expect(bandwidthAnnotationProblem({ 'kubernetes.io/egress-bandwidth': 'fast' })?.key).toBe('kubernetes.io/egress-bandwidth');
    expect(bandwidthAnnotationProblem({ 'kubernetes.io/ingress-bandwidth': '10M' })).toEqual({
      key: 'kubernetes.io/ingress-bandwidth', reason: 'is not supported: the bandwidth manager limits egress only (use kubernetes.io/egress-bandwidth)',
    });
  });

  it('prints rates as DecimalSI quantities, as cilium bpf bandwidth list', () => {
    expect(formatBitRate(10e6)).toBe('10M');
    expect(formatBitRate(2.5e6)).toBe('2500k');
    expect(formatBitRate(1e9)).toBe('1G');
    expect(formatBitRate(1048576)).toBe('1048576');
  });

  it('reads the horizon as a Go duration', () => {
    expect(durationMs('2s')).toBe(2000);
    expect(durationMs('500ms')).toBe(500);
    expect(durationMs('1m30s')).toBe(90000);
    expect(durationMs('100us')).toBeCloseTo(0.1);
    for (const bad of ['2', '0s', 's', '2 s', '-1s']) expect(durationMs(bad), bad).toBeUndefined();
  });
});
