//! Menu, stock and drivers: read from a file when one is given, else the
//! defaults in `assets/`, compiled in so that the binary works anywhere.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

const MENU: &str = include_str!("../../../assets/menu.toml");
const STOCK: &str = include_str!("../../../assets/stock.toml");
const DRIVERS: &str = include_str!("../../../assets/drivers.toml");

/// Errors reading an asset file.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path} is not a valid {what} file: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Menu, stock or drivers.
        what: &'static str,
        /// Why (boxed: the parser's error is large).
        source: Box<toml::de::Error>,
    },
}

fn load<T: serde::de::DeserializeOwned>(
    file: Option<&Path>,
    default: &str,
    what: &'static str,
) -> Result<T, AssetError> {
    let (text, path) = match file {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|source| AssetError::Read {
                path: p.display().to_string(),
                source,
            })?,
            p.display().to_string(),
        ),
        None => (default.to_string(), format!("the built-in {what}")),
    };
    toml::from_str(&text).map_err(|source| AssetError::Parse {
        path,
        what,
        source: Box::new(source),
    })
}

/// One pizza on the menu.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pizza {
    /// Its name, as ordered.
    pub name: String,
    /// Price of one.
    pub price_cents: u64,
    /// One portion of each per pizza.
    pub ingredients: Vec<String>,
}

/// The menu.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    /// Every pizza.
    pub pizza: Vec<Pizza>,
}

impl Menu {
    /// Reads `file`, or the built-in menu.
    pub fn load(file: Option<&Path>) -> Result<Menu, AssetError> {
        load(file, MENU, "menu")
    }

    /// The pizza called `name`.
    pub fn get(&self, name: &str) -> Option<&Pizza> {
        self.pizza.iter().find(|p| p.name == name)
    }
}

/// A kitchen's stock: portions left per ingredient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stock {
    /// Portions per ingredient.
    pub stock: BTreeMap<String, u32>,
}

impl Stock {
    /// Reads `file`, or the built-in stock.
    pub fn load(file: Option<&Path>) -> Result<Stock, AssetError> {
        load(file, STOCK, "stock")
    }

    /// The first ingredient of `needed` that is missing, if any.
    pub fn missing<'a>(&self, needed: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        let mut wanted: BTreeMap<&str, u32> = BTreeMap::new();
        for i in needed {
            *wanted.entry(i).or_default() += 1;
        }
        wanted
            .into_iter()
            .find(|(i, n)| self.stock.get(*i).copied().unwrap_or(0) < *n)
            .map(|(i, _)| i)
    }

    /// Takes one portion of each of `used` (call after [`Stock::missing`]).
    pub fn take<'a>(&mut self, used: impl IntoIterator<Item = &'a str>) {
        for i in used {
            if let Some(n) = self.stock.get_mut(i) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DriverFile {
    drivers: Vec<String>,
}

/// `count` driver names: the file's (or the built-in list's) first ones,
/// then `driver-N`.
pub fn drivers(file: Option<&Path>, count: usize) -> Result<Vec<String>, AssetError> {
    let f: DriverFile = load(file, DRIVERS, "drivers")?;
    Ok((0..count)
        .map(|i| {
            f.drivers
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("driver-{}", i + 1))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_assets_parse() {
        let menu = Menu::load(None).unwrap();
        assert!(menu.get("margherita").is_some());
        let stock = Stock::load(None).unwrap();
        for p in &menu.pizza {
            assert_eq!(
                stock.missing(p.ingredients.iter().map(String::as_str)),
                None,
                "{} is cookable",
                p.name
            );
        }
        assert_eq!(drivers(None, 10).unwrap()[9], "driver-10");
    }

    #[test]
    fn stock_runs_out() {
        let mut stock = Stock {
            stock: [("dough".to_string(), 1)].into(),
        };
        assert_eq!(stock.missing(["dough"]), None);
        stock.take(["dough"]);
        assert_eq!(stock.missing(["dough"]), Some("dough"));
        assert_eq!(stock.missing(["dough", "caviar"]), Some("caviar"));
    }
}
