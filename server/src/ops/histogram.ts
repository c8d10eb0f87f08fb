import type { Metric, Registry } from 'prom-client';

/** One label combination's counts: per bucket (not cumulative; the last is +Inf), the sum and the count. */
export class HistogramSeries {
  readonly buckets: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly upperBounds: readonly number[],
    readonly labels: Readonly<Record<string, string>>,
  ) {
    this.buckets = new Float64Array(upperBounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.upperBounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    (this.buckets[i] as number)++;
    this.sum += value;
    this.count++;
  }
}

interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

/**
 * A Prometheus histogram for the per-request hot path. prom-client's Histogram validates and hashes
 * the labels object on every observation; here each label combination is looked up once and kept
 * (the callers hold a few: route patterns × methods × status classes), so an observation is a
 * bucket search and three additions. It registers with a prom-client registry and answers the
 * exposition the same way prom-client's own histogram does (cumulative `le` buckets, then
 * +Inf, _sum and _count), summed across cluster workers by the same aggregator.
 */
export class RequestHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, HistogramSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    private readonly upperBounds: readonly number[],
    registries: readonly Registry[],
  ) {
    for (const registry of registries) registry.registerMetric(this as unknown as Metric);
  }

  /** The series of one label combination (label values in `labelNames` order), made on first use. */
  seriesOf(values: readonly string[]): HistogramSeries {
    const key = values.join('\u0000');
    let series = this.series.get(key);
    if (!series) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => {
        labels[name] = values[i] ?? '';
      });
      series = new HistogramSeries(this.upperBounds, labels);
      this.series.set(key, series);
    }
    return series;
  }

  async get(): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: string }> {
    const values: MetricValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.upperBounds.forEach((le, i) => {
        cumulative += s.buckets[i] as number;
        values.push({ value: cumulative, labels: { le, ...s.labels }, metricName: bucketName });
      });
      values.push({ value: s.count, labels: { le: '+Inf', ...s.labels }, metricName: bucketName });
      values.push({ value: s.sum, labels: { ...s.labels }, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: { ...s.labels }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** Zeroes every series (callers keep the series they hold). */
  reset(): void {
    for (const s of this.series.values()) {
      s.buckets.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
