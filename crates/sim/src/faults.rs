//! Fault injection: latency, 5xx, timeouts, 429 and malformed JSON, globally
//! or per route template; and the real per-token rate limit.

use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::rest::Route;

/// Faults in force. `global` applies to every counted route; `per_route`
/// entries apply to one route template (e.g. `"/incidents"`,
/// `"/services/{id}"`, `"/v2/enqueue"`).
///
/// Latencies add up (global + route). The deterministic counters
/// (`timeout_next`, `fail_next`, `malformed_next`) of the route's entry are
/// used first, then the global ones; each request consumes at most one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Applies to every route.
    pub global: FaultSpec,
    /// `(route template, spec)` pairs; serialized as `[["/incidents", {...}]]`.
    pub per_route: Vec<(String, FaultSpec)>,
    /// A real per-token (per OAuth app) limit on REST requests per minute,
    /// e.g. `Some(960)`; `None` = no limit. Must be at least 1. Changing it
    /// starts every token's window over.
    pub rate_limit_per_minute: Option<u32>,
}

/// One set of faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    /// Fixed added latency in milliseconds.
    pub latency_ms: u64,
    /// Random extra latency, uniform in `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// Share (0.0–1.0) of requests answered with a random 5xx (500, 502, 503 or 504).
    pub error_rate: f64,
    /// The next N requests get `fail_status`.
    pub fail_next: u32,
    /// Status for `fail_next` (e.g. 500, 503, 429, 401), 200–599. Default 500.
    pub fail_status: u16,
    /// `ratelimit-reset` (seconds) sent with injected 429s. Default 1.
    pub rate_limit_reset_secs: u64,
    /// The next N requests get no answer (held up to 60 s, then 504).
    pub timeout_next: u32,
    /// The next N requests get `200` with a body that is not valid JSON.
    pub malformed_next: u32,
}

impl Default for FaultSpec {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            jitter_ms: 0,
            error_rate: 0.0,
            fail_next: 0,
            fail_status: 500,
            rate_limit_reset_secs: 1,
            timeout_next: 0,
            malformed_next: 0,
        }
    }
}

impl FaultSpec {
    /// Checks ranges; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) || self.error_rate.is_nan() {
            return Err("error_rate must be between 0.0 and 1.0".to_owned());
        }
        // An informational (1xx) status is not a final answer.
        if !(200..=599).contains(&self.fail_status) {
            return Err(format!(
                "fail_status must be an HTTP status between 200 and 599, got {}",
                self.fail_status
            ));
        }
        Ok(())
    }
}

impl Faults {
    /// Only `spec`, on the route template `route` (e.g. `/v2/enqueue`).
    pub fn on_route(route: &str, spec: FaultSpec) -> Faults {
        Faults {
            per_route: vec![(route.to_owned(), spec)],
            ..Faults::default()
        }
    }

    /// Checks every spec; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.rate_limit_per_minute == Some(0) {
            return Err(
                "rate_limit_per_minute must be at least 1 (null or absent turns the limit off)"
                    .to_owned(),
            );
        }
        self.global.validate().map_err(|e| format!("global.{e}"))?;
        for (route, spec) in &self.per_route {
            if !Route::is_template(route) {
                let known: Vec<&str> = Route::TEMPLATES.iter().map(|(_, t)| *t).collect();
                return Err(format!(
                    "per_route[{route}]: unknown route template, known: {}",
                    known.join(", ")
                ));
            }
            spec.validate()
                .map_err(|e| format!("per_route[{route}].{e}"))?;
        }
        Ok(())
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultAction {
    Pass,
    Hold,
    Fail { status: u16, reset_secs: u64 },
    Malformed,
}

pub(crate) struct FaultDecision {
    pub latency: Duration,
    pub action: FaultAction,
}

fn take(counter: &mut u32) -> bool {
    if *counter > 0 {
        *counter -= 1;
        true
    } else {
        false
    }
}

/// Decides the fault for one request on `route`, consuming counters.
pub(crate) fn decide(faults: &mut Faults, route: &str, rng: &mut ChaCha8Rng) -> FaultDecision {
    let Faults {
        global, per_route, ..
    } = faults;
    let mut specs: Vec<&mut FaultSpec> = Vec::with_capacity(2);
    if let Some((_, spec)) = per_route.iter_mut().find(|(r, _)| r == route) {
        specs.push(spec);
    }
    specs.push(global);

    let mut latency_ms = 0u64;
    for spec in specs.iter() {
        latency_ms = latency_ms.saturating_add(spec.latency_ms);
        if spec.jitter_ms > 0 {
            latency_ms = latency_ms.saturating_add(rng.random_range(0..=spec.jitter_ms));
        }
    }
    let latency = Duration::from_millis(latency_ms);

    for spec in specs.iter_mut() {
        if take(&mut spec.timeout_next) {
            return FaultDecision {
                latency,
                action: FaultAction::Hold,
            };
        }
    }
    for spec in specs.iter_mut() {
        if take(&mut spec.fail_next) {
            return FaultDecision {
                latency,
                action: FaultAction::Fail {
                    status: spec.fail_status,
                    reset_secs: spec.rate_limit_reset_secs,
                },
            };
        }
    }
    for spec in specs.iter_mut() {
        if take(&mut spec.malformed_next) {
            return FaultDecision {
                latency,
                action: FaultAction::Malformed,
            };
        }
    }
    for spec in specs.iter() {
        if spec.error_rate > 0.0 && rng.random_bool(spec.error_rate.min(1.0)) {
            let status = [500, 502, 503, 504][rng.random_range(0..4usize)];
            return FaultDecision {
                latency,
                action: FaultAction::Fail {
                    status,
                    reset_secs: spec.rate_limit_reset_secs,
                },
            };
        }
    }
    FaultDecision {
        latency,
        action: FaultAction::Pass,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn route_counters_are_used_before_global_ones() {
        let mut faults = Faults {
            global: FaultSpec {
                fail_next: 1,
                fail_status: 503,
                ..FaultSpec::default()
            },
            per_route: vec![(
                "/incidents".to_owned(),
                FaultSpec {
                    fail_next: 1,
                    fail_status: 429,
                    rate_limit_reset_secs: 7,
                    ..FaultSpec::default()
                },
            )],
            rate_limit_per_minute: None,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let a = decide(&mut faults, "/incidents", &mut rng).action;
        let b = decide(&mut faults, "/incidents", &mut rng).action;
        let c = decide(&mut faults, "/incidents", &mut rng).action;
        assert_eq!(
            a,
            FaultAction::Fail {
                status: 429,
                reset_secs: 7
            }
        );
        assert_eq!(
            b,
            FaultAction::Fail {
                status: 503,
                reset_secs: 1
            }
        );
        assert_eq!(c, FaultAction::Pass);
    }

    #[test]
    fn validate_names_the_field() {
        let faults = Faults {
            global: FaultSpec {
                error_rate: 1.5,
                ..FaultSpec::default()
            },
            per_route: vec![],
            rate_limit_per_minute: None,
        };
        assert!(faults.validate().unwrap_err().contains("global.error_rate"));
        let zero = Faults {
            rate_limit_per_minute: Some(0),
            ..Faults::default()
        };
        assert!(
            zero.validate()
                .unwrap_err()
                .contains("rate_limit_per_minute")
        );
    }
}
