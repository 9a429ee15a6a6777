//! Network faults, as plain data: the toxics on a node's links (after
//! Toxiproxy's), and what one direction of one connection does under them.
//! The proxy (`crate::proxy`) is the I/O shell that obeys [`plan`].
//!
//! A *link* is a TCP connection the platform starts, named for what is at
//! its far end: `broker` (every node's MQTT link) or a service it calls
//! (`payment` for the order node).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The link every node but the broker has.
pub const BROKER_LINK: &str = "broker";

/// Which way a toxic acts. Upstream is from the node to what it connects
/// to, downstream the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Node → far end.
    Upstream,
    /// Far end → node.
    Downstream,
    /// Both ways.
    #[default]
    Both,
}

impl Direction {
    /// Whether a toxic in this direction acts on data flowing `way`.
    pub fn covers(self, way: Way) -> bool {
        matches!(
            (self, way),
            (Direction::Both, _) | (Direction::Upstream, Way::Up) | (Direction::Downstream, Way::Down)
        )
    }
}

/// One of a connection's two byte streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// From the node.
    Up,
    /// To the node.
    Down,
}

/// What a toxic does (Toxiproxy's names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToxicKind {
    /// Every chunk arrives `ms` (± `jitter_ms`) late; order is kept.
    Latency {
        /// The delay.
        ms: u64,
        /// Up to this much more or less, at random per chunk.
        #[serde(default)]
        jitter_ms: u64,
    },
    /// At most this many kilobytes per second.
    Bandwidth {
        /// KB/s.
        kb_per_s: u64,
    },
    /// Data stops, the connection stays open (a black hole); after `ms`
    /// it is closed (`0`: never, until the toxic is removed).
    Timeout {
        /// When to close, `0` for never.
        #[serde(default)]
        ms: u64,
    },
    /// The connection is reset (TCP RST) after `ms`.
    ResetPeer {
        /// When.
        #[serde(default)]
        ms: u64,
    },
    /// Chunks cut into slices of about `average_bytes` (± `size_variation`),
    /// `delay_us` apart.
    Slicer {
        /// The mean slice.
        #[serde(default = "default_slice")]
        average_bytes: usize,
        /// Up to this much more or less.
        #[serde(default)]
        size_variation: usize,
        /// Pause between slices.
        #[serde(default)]
        delay_us: u64,
    },
    /// New connections refused, existing ones cut.
    Down,
    /// Cut off both ways while both ends keep running: nothing passes, new
    /// connections hang, and when it heals the held bytes flow again (as
    /// TCP would retransmit them), unless an end gave up meanwhile.
    Partition,
}

fn default_slice() -> usize {
    64
}

fn one() -> f64 {
    1.0
}

fn is_both(d: &Direction) -> bool {
    *d == Direction::Both
}

fn is_one(t: &f64) -> bool {
    *t == 1.0
}

/// One toxic on a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Toxic {
    /// What it does.
    #[serde(flatten)]
    pub kind: ToxicKind,
    /// Which way.
    #[serde(default, skip_serializing_if = "is_both")]
    pub direction: Direction,
    /// The share of connections it acts on, 0..=1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub toxicity: f64,
}

impl Toxic {
    /// A toxic on every connection, both ways.
    pub fn new(kind: ToxicKind) -> Toxic {
        Toxic {
            kind,
            direction: Direction::Both,
            toxicity: 1.0,
        }
    }

    /// Whether it acts on a connection that rolled `roll` (0..1, drawn once
    /// when the connection was made), for data flowing `way`.
    pub fn acts(&self, way: Way, roll: f64) -> bool {
        self.direction.covers(way) && roll < self.toxicity
    }

    /// Why it cannot be applied, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.toxicity) {
            return Err(format!("toxicity must be within 0..=1, not {}", self.toxicity));
        }
        const MAX_MS: u64 = 600_000;
        let too_long =
            |field: &str, v: u64| (v > MAX_MS).then(|| format!("{field} must be at most {MAX_MS}, not {v}"));
        let problem = match &self.kind {
            ToxicKind::Latency { ms, jitter_ms } => too_long("ms", *ms).or(too_long("jitter_ms", *jitter_ms)),
            ToxicKind::Bandwidth { kb_per_s } => (*kb_per_s == 0)
                .then(|| "kb_per_s must be at least 1 (use `timeout` to stop data)".to_string()),
            ToxicKind::Timeout { ms } | ToxicKind::ResetPeer { ms } => too_long("ms", *ms),
            ToxicKind::Slicer {
                average_bytes,
                size_variation,
                delay_us,
            } => {
                if *average_bytes == 0 || size_variation >= average_bytes {
                    Some(format!(
                        "average_bytes must be above 0 and above size_variation ({average_bytes}, {size_variation})"
                    ))
                } else {
                    too_long("delay_us / 1000", delay_us / 1000)
                }
            }
            ToxicKind::Down | ToxicKind::Partition => None,
        };
        problem.map_or(Ok(()), Err)
    }

    /// A few words for the FAULTS column and the narration.
    pub fn label(&self) -> String {
        let base = match &self.kind {
            ToxicKind::Latency { ms, jitter_ms: 0 } => format!("+{ms}ms"),
            ToxicKind::Latency { ms, jitter_ms } => format!("+{ms}±{jitter_ms}ms"),
            ToxicKind::Bandwidth { kb_per_s } => format!("{kb_per_s}KB/s"),
            ToxicKind::Timeout { .. } => "black hole".into(),
            ToxicKind::ResetPeer { .. } => "reset".into(),
            ToxicKind::Slicer { average_bytes, .. } => format!("sliced {average_bytes}B"),
            ToxicKind::Down => "down".into(),
            ToxicKind::Partition => "partition".into(),
        };
        let way = match self.direction {
            Direction::Both => "",
            Direction::Upstream => "↑",
            Direction::Downstream => "↓",
        };
        let share = if self.toxicity < 1.0 {
            format!(" {:.0}%", self.toxicity * 100.0)
        } else {
            String::new()
        };
        format!("{base}{way}{share}")
    }
}

/// The FAULTS column's text for one link's toxics, e.g. `broker: partition`.
pub fn describe(link: &str, toxics: &[Toxic]) -> Option<String> {
    if toxics.is_empty() {
        return None;
    }
    let labels: Vec<String> = toxics.iter().map(Toxic::label).collect();
    Some(format!("{link}: {}", labels.join(" ")))
}

/// What one direction of one connection does now, from the toxics that
/// act on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Pass nothing (timeout, partition) until the toxics change.
    pub hold: bool,
    /// Close the connection after this long (timeout with `ms`).
    pub close_after: Option<Duration>,
    /// Reset it after this long (reset_peer); `down` resets at once.
    pub reset_after: Option<Duration>,
    /// The least delay of every chunk, and the most extra on top.
    pub latency: (Duration, Duration),
    /// Bytes per second, at most.
    pub bytes_per_s: Option<u64>,
    /// Slices: mean size, variation, pause between.
    pub slices: Option<(usize, usize, Duration)>,
}

impl Plan {
    /// The delay of one chunk, `u` drawn from 0..1.
    pub fn delay(&self, u: f64) -> Duration {
        let (least, extra) = self.latency;
        least + extra.mul_f64(u.clamp(0.0, 1.0))
    }

    /// How long writing `bytes` takes at the bandwidth limit.
    pub fn pace(&self, bytes: usize) -> Duration {
        match self.bytes_per_s {
            Some(rate) if rate > 0 => Duration::from_secs_f64(bytes as f64 / rate as f64),
            _ => Duration::ZERO,
        }
    }

    /// The sizes to cut `len` bytes into, `u` drawing each slice's variation.
    pub fn cut(&self, len: usize, mut u: impl FnMut() -> f64) -> Vec<usize> {
        let Some((mean, variation, _)) = self.slices else {
            return vec![len];
        };
        let mut sizes = Vec::new();
        let mut left = len;
        while left > 0 {
            // mean ± variation, never 0.
            let spread = (2.0 * u() - 1.0) * variation as f64;
            let size = ((mean as f64 + spread).round() as usize).clamp(1, left);
            sizes.push(size);
            left -= size;
        }
        sizes
    }
}

/// The plan for data flowing `way` on a connection that rolled `roll`.
/// Latencies and pauses add up; the tightest bandwidth wins.
pub fn plan(toxics: &[Toxic], way: Way, roll: f64) -> Plan {
    let mut p = Plan::default();
    for t in toxics.iter().filter(|t| t.acts(way, roll)) {
        match &t.kind {
            ToxicKind::Latency { ms, jitter_ms } => {
                let least = ms.saturating_sub(*jitter_ms);
                p.latency.0 += Duration::from_millis(least);
                p.latency.1 += Duration::from_millis(ms + jitter_ms - least);
            }
            ToxicKind::Bandwidth { kb_per_s } => {
                let rate = kb_per_s * 1024;
                p.bytes_per_s = Some(p.bytes_per_s.map_or(rate, |r| r.min(rate)));
            }
            ToxicKind::Timeout { ms } => {
                p.hold = true;
                if *ms > 0 {
                    p.close_after = Some(Duration::from_millis(*ms));
                }
            }
            ToxicKind::ResetPeer { ms } => p.reset_after = Some(Duration::from_millis(*ms)),
            ToxicKind::Slicer {
                average_bytes,
                size_variation,
                delay_us,
            } => p.slices = Some((*average_bytes, *size_variation, Duration::from_micros(*delay_us))),
            ToxicKind::Down => p.reset_after = Some(Duration::ZERO),
            ToxicKind::Partition => p.hold = true,
        }
    }
    p
}

/// Whether a new connection waits before it reaches the far end (a
/// partition), and whether it is refused (down).
pub fn admits(toxics: &[Toxic], roll: f64) -> Admit {
    let acting = |kind: fn(&ToxicKind) -> bool| {
        toxics
            .iter()
            .any(|t| kind(&t.kind) && (t.acts(Way::Up, roll) || t.acts(Way::Down, roll)))
    };
    if acting(|k| matches!(k, ToxicKind::Down)) {
        Admit::Refuse
    } else if acting(|k| matches!(k, ToxicKind::Partition)) {
        Admit::Wait
    } else {
        Admit::Pass
    }
}

/// What becomes of a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Connect to the far end now.
    Pass,
    /// Hang until the toxics change.
    Wait,
    /// Reset it.
    Refuse,
}

/// The fault menu's settings for a link, in the order `→` cycles them.
pub fn presets() -> Vec<Vec<Toxic>> {
    let one = |kind| vec![Toxic::new(kind)];
    vec![
        Vec::new(),
        one(ToxicKind::Latency {
            ms: 200,
            jitter_ms: 0,
        }),
        one(ToxicKind::Latency {
            ms: 1_000,
            jitter_ms: 500,
        }),
        one(ToxicKind::Bandwidth { kb_per_s: 8 }),
        one(ToxicKind::Slicer {
            average_bytes: 16,
            size_variation: 8,
            delay_us: 2_000,
        }),
        one(ToxicKind::Timeout { ms: 0 }),
        one(ToxicKind::ResetPeer { ms: 1_000 }),
        one(ToxicKind::Down),
        one(ToxicKind::Partition),
    ]
}

/// The preset after (or before) `now`; a setting that is no preset (a
/// scenario's) counts as the first.
pub fn next_preset(now: &[Toxic], forward: bool) -> Vec<Toxic> {
    let all = presets();
    let n = all.len();
    let i = all.iter().position(|p| p == now).unwrap_or(0);
    all[if forward { (i + 1) % n } else { (i + n - 1) % n }].clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toxic_acts_on_its_direction_and_its_share_of_connections() {
        let t = Toxic {
            kind: ToxicKind::Partition,
            direction: Direction::Upstream,
            toxicity: 0.5,
        };
        assert!(t.acts(Way::Up, 0.2));
        assert!(!t.acts(Way::Down, 0.2));
        assert!(!t.acts(Way::Up, 0.7));
    }

    #[test]
    fn latencies_add_up_and_the_tightest_bandwidth_wins() {
        let toxics = [
            Toxic::new(ToxicKind::Latency {
                ms: 100,
                jitter_ms: 20,
            }),
            Toxic::new(ToxicKind::Latency { ms: 50, jitter_ms: 0 }),
            Toxic::new(ToxicKind::Bandwidth { kb_per_s: 10 }),
            Toxic::new(ToxicKind::Bandwidth { kb_per_s: 2 }),
        ];
        let p = plan(&toxics, Way::Down, 0.0);
        assert_eq!(p.delay(0.0), Duration::from_millis(130));
        assert_eq!(p.delay(1.0), Duration::from_millis(170));
        assert_eq!(p.bytes_per_s, Some(2048));
        assert_eq!(p.pace(1024), Duration::from_millis(500));
        assert!(!p.hold);
    }

    #[test]
    fn a_partition_holds_both_ways_and_makes_new_connections_wait() {
        let toxics = [Toxic::new(ToxicKind::Partition)];
        assert!(plan(&toxics, Way::Up, 0.3).hold);
        assert!(plan(&toxics, Way::Down, 0.3).hold);
        assert_eq!(admits(&toxics, 0.3), Admit::Wait);
        assert_eq!(admits(&[], 0.3), Admit::Pass);
        assert_eq!(admits(&[Toxic::new(ToxicKind::Down)], 0.3), Admit::Refuse);
    }

    #[test]
    fn a_slicer_cuts_a_chunk_into_slices_that_add_up_to_it() {
        let p = plan(
            &[Toxic::new(ToxicKind::Slicer {
                average_bytes: 10,
                size_variation: 4,
                delay_us: 0,
            })],
            Way::Up,
            0.0,
        );
        let mut draws = [0.0, 1.0, 0.5].into_iter().cycle();
        let sizes = p.cut(45, || draws.next().unwrap_or(0.5));
        assert_eq!(sizes.iter().sum::<usize>(), 45);
        assert_eq!(&sizes[..3], &[6, 14, 10]);
        assert_eq!(plan(&[], Way::Up, 0.0).cut(45, || 0.5), vec![45]);
    }

    #[test]
    fn bad_settings_are_refused_naming_the_field() {
        let mut t = Toxic::new(ToxicKind::Latency { ms: 10, jitter_ms: 0 });
        t.toxicity = 1.5;
        assert!(t.validate().is_err_and(|e| e.contains("toxicity")));
        let t = Toxic::new(ToxicKind::Bandwidth { kb_per_s: 0 });
        assert!(t.validate().is_err_and(|e| e.contains("kb_per_s")));
        let t = Toxic::new(ToxicKind::Timeout { ms: u64::MAX });
        assert!(t.validate().is_err_and(|e| e.contains("ms")));
    }

    #[test]
    fn toxics_read_as_a_scenario_writes_them() {
        let text = r#"toxics = [{ type = "latency", ms = 200, jitter_ms = 50, direction = "downstream", toxicity = 0.5 }, { type = "partition" }]"#;
        #[derive(Deserialize)]
        struct Holder {
            toxics: Vec<Toxic>,
        }
        let h: Holder = toml::from_str(text).expect("parses");
        assert_eq!(h.toxics[0].label(), "+200±50ms↓ 50%");
        assert_eq!(h.toxics[1], Toxic::new(ToxicKind::Partition));
        assert_eq!(
            describe("broker", &h.toxics).as_deref(),
            Some("broker: +200±50ms↓ 50% partition")
        );
    }

    #[test]
    fn the_menu_cycles_through_its_presets_and_back_to_none() {
        let mut now = Vec::new();
        for _ in 0..presets().len() {
            now = next_preset(&now, true);
        }
        assert!(now.is_empty());
        assert_eq!(next_preset(&[], false), vec![Toxic::new(ToxicKind::Partition)]);
    }
}
