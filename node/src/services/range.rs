//! Range flags such as `--prep-ms 5000..10000`: a duration drawn uniformly
//! per use. A single value is a fixed duration; `0` means instant.

use std::time::Duration;

use rand::Rng;

/// A range of milliseconds, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsRange {
    /// Shortest.
    pub min: u64,
    /// Longest.
    pub max: u64,
}

impl MsRange {
    /// A fixed duration.
    pub const fn fixed(ms: u64) -> Self {
        MsRange { min: ms, max: ms }
    }

    /// A duration from the range.
    pub fn sample(&self) -> Duration {
        let ms = if self.max > self.min {
            rand::thread_rng().gen_range(self.min..=self.max)
        } else {
            self.min
        };
        Duration::from_millis(ms)
    }
}

impl std::str::FromStr for MsRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a duration in ms or a range like 20..200");
        let parse = |t: &str| t.trim().parse::<u64>().map_err(|_| bad());
        match s.split_once("..") {
            Some((a, b)) => {
                let (min, max) = (parse(a)?, parse(b)?);
                if min > max {
                    return Err(format!("range {s} runs backwards: write {max}..{min}"));
                }
                Ok(MsRange { min, max })
            }
            None => Ok(MsRange::fixed(parse(s)?)),
        }
    }
}

impl std::fmt::Display for MsRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}..{}", self.min, self.max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_values_and_ranges() {
        assert_eq!("0".parse::<MsRange>().unwrap(), MsRange::fixed(0));
        assert_eq!(
            "20..200".parse::<MsRange>().unwrap(),
            MsRange { min: 20, max: 200 }
        );
        assert!("200..20".parse::<MsRange>().is_err());
        assert!("fast".parse::<MsRange>().is_err());
        let r: MsRange = "5..7".parse().unwrap();
        for _ in 0..50 {
            let d = r.sample().as_millis() as u64;
            assert!((5..=7).contains(&d));
        }
        assert_eq!(MsRange::fixed(0).sample(), Duration::ZERO);
    }
}
