//! `--record FILE`: what the operator does, as a scenario that replays it.
//!
//! Keys are not recorded as keys: the [`Effect`]s they produce (after any
//! confirmation) are mapped to scenario [`Step`]s, with `sleep` steps for the
//! time between them. The recording ends by waiting for every order placed to
//! end, and expects what any correct run must show: no accepted order lost,
//! none cooked twice. Replayed headless, it reaches the same verdict.

use contracts::status::Control;
use time::OffsetDateTime;

use crate::model::Nodes;
use crate::msg::Effect;
use crate::scenario::{Expect, Scenario, Step, UntilKind};
use crate::topology::NodeSpec;

/// Pauses shorter than this are not worth a `sleep` step.
const MIN_SLEEP_S: f64 = 0.2;

/// A session being recorded.
#[derive(Debug, Clone)]
pub struct Recording {
    /// When the last step was recorded (or the recording began).
    last: OffsetDateTime,
    /// The steps so far.
    pub steps: Vec<Step>,
    /// Orders accepted so far, to name a cancelled one by its place.
    accepted: Vec<String>,
}

impl Recording {
    /// A recording starting at `now`.
    pub fn new(now: OffsetDateTime) -> Recording {
        Recording {
            last: now,
            steps: Vec::new(),
            accepted: Vec::new(),
        }
    }

    /// Orders accepted (so that a cancellation names the order by position).
    pub fn accepted(&mut self, ids: &[String]) {
        self.accepted.extend(ids.iter().cloned());
    }

    /// Records the effects of one key press.
    pub fn note(&mut self, now: OffsetDateTime, effects: &[Effect], nodes: &Nodes) {
        for effect in effects {
            let Some(step) = self.step_for(effect, nodes, now) else {
                continue;
            };
            let pause = (now - self.last).as_seconds_f64();
            if pause >= MIN_SLEEP_S {
                self.steps.push(Step::Sleep {
                    seconds: (pause * 10.0).round() / 10.0,
                    caption: None,
                });
            }
            self.steps.push(step);
            self.last = now;
        }
    }

    fn step_for(&self, effect: &Effect, nodes: &Nodes, now: OffsetDateTime) -> Option<Step> {
        let node = |id: &String| id.clone();
        Some(match effect {
            Effect::Start(id) => Step::Start {
                node: node(id),
                caption: None,
            },
            Effect::Stop(id) => Step::Stop {
                node: node(id),
                caption: None,
            },
            Effect::Kill(id) => Step::Kill {
                node: node(id),
                caption: None,
            },
            Effect::Freeze(id, true) => Step::Pause {
                node: node(id),
                caption: None,
            },
            Effect::Freeze(id, false) => Step::Resume {
                node: node(id),
                caption: None,
            },
            Effect::Restart(id) => Step::Restart {
                node: node(id),
                caption: None,
            },
            Effect::ScaleUp(role) => {
                let alive = crate::model::nodes::running(nodes, role.as_str(), now).count() as u32;
                Step::Scale {
                    role: role.as_str().to_string(),
                    to: alive + 1,
                    caption: None,
                }
            }
            Effect::Control(id, Control::SetFaults { faults }) => Step::Fault {
                node: node(id),
                faults: faults.clone(),
                caption: None,
            },
            Effect::Control(id, Control::ClearFaults) => Step::ClearFaults {
                node: node(id),
                caption: None,
            },
            Effect::Network {
                node: id,
                link,
                toxics,
            } => Step::Network {
                node: node(id),
                link: link.clone(),
                toxics: toxics.clone(),
                caption: None,
            },
            Effect::PlaceOrders { count, .. } => Step::Place {
                count: *count,
                caption: None,
            },
            Effect::CancelOrder { order_id, .. } => {
                let place = self.accepted.iter().position(|o| o == order_id)?;
                Step::Cancel {
                    order: place as i64 + 1,
                    caption: None,
                }
            }
            Effect::Requeue(queue, _) => Step::Requeue {
                queue: queue.clone(),
                caption: None,
            },
            // Pause/resume/stop commands to nodes not started here, and quitting,
            // are not part of a replayable timeline.
            Effect::RollingRestart(role) => Step::RollingRestart {
                role: role.as_str().to_string(),
                caption: None,
            },
            Effect::Storage { node: id, op } => Step::of_storage(*op, node(id)),
            Effect::Canary(plan) => Step::Canary {
                role: plan.role.as_str().to_string(),
                args: plan.args.clone(),
                window_s: plan.window_s,
                max_error_rate: plan.max_error_rate,
                caption: None,
            },
            // The canary step starts and promotes it again; the rest is
            // not part of a replayable timeline.
            Effect::Launch { .. } | Effect::Respec { .. } | Effect::Control(..) | Effect::Quit { .. } => {
                return None
            }
        })
    }

    /// The recorded session as a scenario for `nodes`.
    pub fn scenario(&self, name: &str, nodes: Vec<NodeSpec>, when: OffsetDateTime) -> Scenario {
        let mut steps = self.steps.clone();
        steps.push(Step::Wait {
            until: UntilKind::Ended,
            count: None,
            queue: None,
            state: None,
            node: None,
            timeout_s: 120.0,
            caption: Some("Every order placed comes to an end.".into()),
        });
        Scenario {
            name: name.to_string(),
            proves: format!(
                "A session recorded at {}: replayed, no accepted order is lost and none is cooked twice.",
                crate::ui::clock(when)
            ),
            nodes,
            steps,
            expect: vec![Expect::NoneLost, Expect::NoneCookedTwice],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Role;
    use contracts::status::Faults;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-21 12:00 UTC);

    #[test]
    fn key_effects_become_steps_with_the_pauses_between_them() {
        let nodes = Nodes::new();
        let mut r = Recording::new(T0);
        let at = |s: f64| T0 + time::Duration::seconds_f64(s);
        r.note(
            at(0.1),
            &[Effect::PlaceOrders {
                url: "u".into(),
                count: 5,
                quiet: false,
            }],
            &nodes,
        );
        r.accepted(&["o1".into(), "o2".into()]);
        r.note(at(2.04), &[Effect::Kill("kitchen-1".into())], &nodes);
        r.note(
            at(2.1),
            &[Effect::ScaleUp(Role::Kitchen), Effect::Quit { stop_nodes: true }],
            &nodes,
        );
        r.note(
            at(3.0),
            &[Effect::Control(
                "kitchen-2".into(),
                Control::SetFaults {
                    faults: Faults {
                        error_rate: 0.5,
                        ..Faults::default()
                    },
                },
            )],
            &nodes,
        );
        r.note(
            at(3.0),
            &[Effect::CancelOrder {
                url: "u".into(),
                order_id: "o2".into(),
            }],
            &nodes,
        );
        let steps: Vec<String> = r.steps.iter().map(Step::describe).collect();
        assert_eq!(
            steps,
            [
                "place 5 order(s)",
                "sleep 1.9 s",
                "kill -9 kitchen-1",
                "scale kitchen to 1",
                "sleep 0.9 s",
                "faults on kitchen-2: error_rate 0.5",
                "cancel order #2",
            ]
        );
        let s = r.scenario("session", Vec::new(), at(4.0));
        assert_eq!(
            s.steps.last().map(Step::describe).as_deref(),
            Some("wait until every order placed has ended (≤ 120 s)")
        );
        assert_eq!(s.expect, vec![Expect::NoneLost, Expect::NoneCookedTwice]);
    }
}
