//! Pressure-rule families: each rule's trigger as last measured, whether it fires and
//! for how long. One series per configured rule (bounded by the config).

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use super::{
    families::{SECONDS, gauges},
    labels::Lv,
};
use crate::policy::PressureStatus;

fn labels(rule: &PressureStatus) -> [(&'static str, Lv<'_>); 2] {
    [
        ("rule", Lv::Text(&rule.rule)),
        ("trigger", Lv::Text(rule.trigger)),
    ]
}

/// Writes the pressure-rule families.
pub fn encode(status: &[PressureStatus], encoder: &mut DescriptorEncoder) -> fmt::Result {
    gauges(
        encoder,
        "guardian_pressure_rule_firing",
        "1 while a pressure rule's trigger holds (it acts once the trigger has held for its sustain), by rule and trigger",
        None,
        status
            .iter()
            .map(|rule| (labels(rule), i64::from(rule.firing))),
    )?;
    gauges(
        encoder,
        "guardian_pressure_rule_held",
        "How long a pressure rule's trigger has held without a break, by rule and trigger",
        Some(&SECONDS),
        status.iter().map(|rule| (labels(rule), rule.held_s)),
    )?;
    gauges(
        encoder,
        "guardian_pressure_rule_value",
        "What a pressure rule's trigger last measured: bytes for mem_available and swap_free, percent of time stalled for psi_some and psi_full",
        None,
        status
            .iter()
            .filter_map(|rule| Some((labels(rule), rule.value?))),
    )?;
    gauges(
        encoder,
        "guardian_pressure_rule_limit",
        "A pressure rule's limit in the unit of guardian_pressure_rule_value (percentages of MemTotal or SwapTotal resolved to bytes)",
        None,
        status
            .iter()
            .filter_map(|rule| Some((labels(rule), rule.threshold?))),
    )
}
