//! Small writers over prometheus-client's collector API: one call per metric family,
//! labelled samples as arrays of `(name, value)`, families without samples left out.

use std::fmt;

use prometheus_client::{
    encoding::{
        DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, MetricEncoder, NoLabelSet,
    },
    metrics::MetricType,
    registry::Unit,
};

use super::labels::Lv;

pub static BYTES: Unit = Unit::Bytes;
pub static SECONDS: Unit = Unit::Seconds;

/// The labels of one sample.
pub type Labels<'a, const N: usize> = [(&'static str, Lv<'a>); N];

/// A gauge family of labelled samples.
pub fn gauges<'a, const N: usize, V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &'static str,
    help: &str,
    unit: Option<&'static Unit>,
    samples: impl IntoIterator<Item = (Labels<'a, N>, V)>,
) -> fmt::Result {
    family(
        encoder,
        name,
        help,
        unit,
        MetricType::Gauge,
        samples,
        |sample, value| sample.encode_gauge(value),
    )
}

/// A counter family of labelled samples (`name` without `_total`: the encoder adds it).
pub fn counters<'a, const N: usize, V: EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    name: &'static str,
    help: &str,
    unit: Option<&'static Unit>,
    samples: impl IntoIterator<Item = (Labels<'a, N>, V)>,
) -> fmt::Result {
    family(
        encoder,
        name,
        help,
        unit,
        MetricType::Counter,
        samples,
        |sample, value| sample.encode_counter::<NoLabelSet, V, u64>(value, None),
    )
}

/// An info family (`name` without `_info`): one sample of value 1 per label set.
pub fn infos<'a, const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &'static str,
    help: &str,
    samples: impl IntoIterator<Item = Labels<'a, N>>,
) -> fmt::Result {
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Info)?;
    for labels in samples {
        metric.encode_info(&labels)?;
    }
    Ok(())
}

/// One unlabelled gauge.
pub fn gauge<V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &'static str,
    help: &str,
    unit: Option<&'static Unit>,
    value: V,
) -> fmt::Result {
    encoder
        .encode_descriptor(name, help, unit, MetricType::Gauge)?
        .encode_gauge(&value)
}

/// One unlabelled counter.
pub fn counter<V: EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    name: &'static str,
    help: &str,
    unit: Option<&'static Unit>,
    value: V,
) -> fmt::Result {
    encoder
        .encode_descriptor(name, help, unit, MetricType::Counter)?
        .encode_counter::<NoLabelSet, V, u64>(&value, None)
}

fn family<'a, const N: usize, V>(
    encoder: &mut DescriptorEncoder,
    name: &'static str,
    help: &str,
    unit: Option<&'static Unit>,
    kind: MetricType,
    samples: impl IntoIterator<Item = (Labels<'a, N>, V)>,
    write: impl Fn(&mut MetricEncoder, &V) -> fmt::Result,
) -> fmt::Result {
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, unit, kind)?;
    for (labels, value) in samples {
        write(&mut metric.encode_family(&labels)?, &value)?;
    }
    Ok(())
}
