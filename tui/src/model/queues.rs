//! The Queues panel's data: the keeper's own figures (never recomputed here)
//! plus a minute of depth history for the sparklines.

use std::collections::{BTreeMap, VecDeque};

use contracts::queue::{DeadLetter, QueueFigures, QueueStats};

/// Samples kept: the keeper reports every 500 ms, so 120 make a minute.
pub const HISTORY: usize = 120;

/// One queue.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueRow {
    /// The keeper's latest figures.
    pub figures: QueueFigures,
    /// Depth (ready + delayed) over the last minute, oldest first.
    pub depth: VecDeque<u64>,
    /// DLQ size over the last minute, oldest first.
    pub dlq: VecDeque<u64>,
}

/// Every queue the keeper reports, by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Queues {
    /// The rows.
    pub rows: BTreeMap<String, QueueRow>,
    /// Each queue's dead letters, as the keeper last listed them.
    pub dead: BTreeMap<String, Vec<DeadLetter>>,
}

impl Queues {
    /// Takes a stats report in.
    pub fn report(&mut self, stats: QueueStats) {
        for f in stats.queues {
            let row = self.rows.entry(f.name.clone()).or_default();
            push(&mut row.depth, f.ready + f.delayed);
            push(&mut row.dlq, f.dlq);
            row.figures = f;
        }
    }

    /// The names to show: the platform's two queues first, then any other.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = [contracts::queue::KITCHEN, contracts::queue::DELIVERY]
            .iter()
            .map(|s| s.to_string())
            .collect();
        names.extend(
            self.rows
                .keys()
                .filter(|k| !names.contains(k))
                .cloned()
                .collect::<Vec<_>>(),
        );
        names
    }
}

fn push(history: &mut VecDeque<u64>, v: u64) {
    if history.len() == HISTORY {
        history.pop_front();
    }
    history.push_back(v);
}

/// A sparkline of `values` in `width` cells: each cell is the largest
/// sample of its slice, scaled to the largest of all.
pub fn sparkline(values: &VecDeque<u64>, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if width == 0 || values.is_empty() {
        return String::new();
    }
    let cells: Vec<u64> = if values.len() <= width {
        values.iter().copied().collect()
    } else {
        let per = values.len().div_ceil(width);
        values
            .iter()
            .copied()
            .collect::<Vec<_>>()
            .chunks(per)
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .collect()
    };
    let top = cells.iter().copied().max().unwrap_or(0);
    cells
        .iter()
        .map(|&v| {
            if top == 0 || v == 0 {
                ' '
            } else {
                BARS[((v * 7).div_ceil(top) as usize).min(7)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_one_minute_and_the_sparkline_scales_to_the_peak() {
        let mut q = Queues::default();
        for i in 0..200u64 {
            q.report(QueueStats {
                at: String::new(),
                queues: vec![QueueFigures {
                    name: "kitchen".into(),
                    ready: i,
                    ..Default::default()
                }],
            });
        }
        let row = &q.rows["kitchen"];
        assert_eq!(row.depth.len(), HISTORY);
        assert_eq!(row.depth.back(), Some(&199));
        let line = sparkline(&row.depth, 10);
        assert_eq!(line.chars().count(), 10);
        assert!(line.ends_with('█'), "{line}");
        assert_eq!(sparkline(&VecDeque::from(vec![0, 0]), 5), "  ");
        assert_eq!(q.names()[..2], ["kitchen".to_string(), "delivery".to_string()]);
    }
}
