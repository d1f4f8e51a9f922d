//! The metrics every proxied request updates (requests, durations, bytes, session lookups),
//! counted per thread and summed when scraped.
//!
//! A `prometheus` counter or histogram is one set of atomics every thread updates: two threads
//! serving requests pass its cache lines back and forth, several times per request (a histogram
//! observation is four atomic operations). Here each thread adds to cells of its own (one of
//! [`SHARDS`] blocks, each on cache lines of its own), and `/metrics` sums the blocks: values
//! are exact at every scrape, as with the library's types, and exported under the same names,
//! labels and buckets.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};

/// Blocks of cells; threads beyond this many share blocks (still exact: cells are atomic).
pub const SHARDS: usize = 16;

/// One cache line of cells.
#[repr(align(64))]
struct Line([AtomicU64; 8]);

/// The block of the calling thread, chosen once per thread, in turn.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|index| *index)
}

/// `cells` counters, one block per shard.
struct Cells {
    shards: Box<[Box<[Line]>]>,
}

impl Cells {
    fn new(cells: usize) -> Self {
        let lines = cells.div_ceil(8);
        let shards = (0..SHARDS)
            .map(|_| {
                (0..lines)
                    .map(|_| Line(std::array::from_fn(|_| AtomicU64::new(0))))
                    .collect()
            })
            .collect();
        Cells { shards }
    }

    #[inline]
    fn add(&self, cell: usize, n: u64) {
        if let Some(line) = self.shards[shard_index()].get(cell / 8) {
            line.0[cell % 8].fetch_add(n, Ordering::Relaxed);
        }
    }

    fn sum(&self, cell: usize) -> u64 {
        self.shards
            .iter()
            .filter_map(|shard| shard.get(cell / 8))
            .map(|line| line.0[cell % 8].load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }
}

/// A metric family's name, help, label names and its series' label values (all series are
/// exported from the start, at zero).
pub struct Family {
    desc: Desc,
    labels: Vec<String>,
    series: Vec<Vec<String>>,
}

impl Family {
    pub fn new(name: &str, help: &str, labels: &[&str], series: Vec<Vec<&str>>) -> Self {
        let desc = Desc::new(
            name.to_string(),
            help.to_string(),
            labels.iter().map(|l| l.to_string()).collect(),
            Default::default(),
        )
        .expect("static metric definition is valid");
        Family {
            desc,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            series: series
                .into_iter()
                .map(|values| values.into_iter().map(str::to_string).collect())
                .collect(),
        }
    }

    /// The series' labels, sorted by name as the text format writes them.
    fn label_pairs(&self, series: usize) -> Vec<proto::LabelPair> {
        let mut pairs: Vec<proto::LabelPair> = self
            .labels
            .iter()
            .zip(&self.series[series])
            .map(|(name, value)| {
                let mut pair = proto::LabelPair::default();
                pair.set_name(name.clone());
                pair.set_value(value.clone());
                pair
            })
            .collect();
        pairs.sort_by(|a, b| a.name().cmp(b.name()));
        pairs
    }

    fn family(&self, kind: MetricType, metrics: Vec<proto::Metric>) -> MetricFamily {
        let mut family = MetricFamily::default();
        family.set_name(self.desc.fq_name.clone());
        family.set_help(self.desc.help.clone());
        family.set_field_type(kind);
        family.set_metric(metrics);
        family
    }
}

/// Where a family's cells start, and its shape.
enum Kind {
    Counter,
    /// Upper bounds in nanoseconds; per series: one cell per bound, then the cell above the
    /// last bound (`+Inf`), then the sum in nanoseconds. The count is the buckets' total, so
    /// that `+Inf` always equals it in a scrape.
    Histogram {
        bounds_ns: Vec<u64>,
        bounds: Vec<f64>,
    },
}

struct Registered {
    family: Family,
    kind: Kind,
    first: usize,
}

impl Registered {
    fn cells_per_series(&self) -> usize {
        match &self.kind {
            Kind::Counter => 1,
            Kind::Histogram { bounds_ns, .. } => bounds_ns.len() + 2,
        }
    }
}

/// A counter of a [`Sharded`] set: a family's first series, or another with
/// [`CounterId::series`].
#[derive(Clone, Copy, Debug)]
pub struct CounterId {
    first: usize,
    count: usize,
    series: usize,
}

impl CounterId {
    /// The counter of the family's `series` (its index in the label values given).
    pub fn series(self, series: usize) -> CounterId {
        CounterId { series, ..self }
    }
}

/// A histogram family of a [`Sharded`] set.
#[derive(Clone, Copy, Debug)]
pub struct HistogramId {
    index: usize,
}

/// A set of families counted per thread; a `prometheus` collector.
pub struct Sharded {
    cells: Cells,
    families: Vec<Registered>,
}

/// Builds a [`Sharded`] set family by family.
#[derive(Default)]
pub struct ShardedBuilder {
    families: Vec<Registered>,
    next: usize,
}

impl ShardedBuilder {
    fn push(&mut self, family: Family, kind: Kind) -> usize {
        let registered = Registered {
            first: self.next,
            family,
            kind,
        };
        self.next += registered.cells_per_series() * registered.family.series.len();
        self.families.push(registered);
        self.families.len() - 1
    }

    pub fn counter(&mut self, family: Family) -> CounterId {
        let first = self.next;
        let count = family.series.len();
        self.push(family, Kind::Counter);
        CounterId {
            first,
            count,
            series: 0,
        }
    }

    /// A histogram with these upper bounds, in seconds.
    pub fn histogram(&mut self, family: Family, bounds: &[f64]) -> HistogramId {
        let bounds_ns = bounds
            .iter()
            .map(|b| Duration::from_secs_f64(*b).as_nanos() as u64)
            .collect();
        let index = self.push(
            family,
            Kind::Histogram {
                bounds_ns,
                bounds: bounds.to_vec(),
            },
        );
        HistogramId { index }
    }

    pub fn build(self) -> Sharded {
        Sharded {
            cells: Cells::new(self.next),
            families: self.families,
        }
    }
}

impl Sharded {
    /// Adds `n` to a counter (a series index beyond the family's is ignored).
    #[inline]
    pub fn add(&self, counter: CounterId, n: u64) {
        if counter.series < counter.count {
            self.cells.add(counter.first + counter.series, n);
        }
    }

    /// Records one duration in a histogram's `series`.
    #[inline]
    pub fn observe(&self, histogram: HistogramId, series: usize, value: Duration) {
        let Some(registered) = self.families.get(histogram.index) else {
            return;
        };
        let Kind::Histogram { bounds_ns, .. } = &registered.kind else {
            return;
        };
        if series >= registered.family.series.len() {
            return;
        }
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        let first = registered.first + series * (bounds_ns.len() + 2);
        let bucket = bounds_ns
            .iter()
            .position(|bound| nanos <= *bound)
            .unwrap_or(bounds_ns.len());
        self.cells.add(first + bucket, 1);
        self.cells.add(first + bounds_ns.len() + 1, nanos);
    }
}

impl Collector for Sharded {
    fn desc(&self) -> Vec<&Desc> {
        self.families.iter().map(|r| &r.family.desc).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.families
            .iter()
            .map(|registered| {
                let family = &registered.family;
                let per = registered.cells_per_series();
                let metrics = (0..family.series.len())
                    .map(|series| {
                        let first = registered.first + series * per;
                        let mut metric = proto::Metric::default();
                        metric.set_label(family.label_pairs(series));
                        match &registered.kind {
                            Kind::Counter => {
                                let mut counter = proto::Counter::default();
                                counter.set_value(self.cells.sum(first) as f64);
                                metric.set_counter(counter);
                            }
                            Kind::Histogram { bounds, .. } => {
                                let mut cumulative = 0u64;
                                let buckets = bounds
                                    .iter()
                                    .enumerate()
                                    .map(|(i, bound)| {
                                        cumulative += self.cells.sum(first + i);
                                        let mut bucket = proto::Bucket::default();
                                        bucket.set_upper_bound(*bound);
                                        bucket.set_cumulative_count(cumulative);
                                        bucket
                                    })
                                    .collect();
                                cumulative += self.cells.sum(first + bounds.len());
                                let mut histogram = proto::Histogram::default();
                                histogram.set_bucket(buckets);
                                histogram.set_sample_count(cumulative);
                                histogram.set_sample_sum(
                                    self.cells.sum(first + bounds.len() + 1) as f64 / 1e9,
                                );
                                metric.set_histogram(histogram);
                            }
                        }
                        metric
                    })
                    .collect();
                let kind = match registered.kind {
                    Kind::Counter => MetricType::COUNTER,
                    Kind::Histogram { .. } => MetricType::HISTOGRAM,
                };
                family.family(kind, metrics)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
