//! Tracing set-up: pretty or JSON, to stderr or to a file.

use std::path::Path;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Keeps the file writer alive; logs are flushed when it drops.
pub struct LogGuard {
    _writer: tracing_appender::non_blocking::WorkerGuard,
}

/// Installs the global subscriber. `RUST_LOG` overrides the default filter.
pub fn init(format: LogFormat, file: Option<&Path>) -> std::io::Result<LogGuard> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,rumqttd=warn,rumqttc=warn,sled=warn"));
    let (writer, guard) = match file {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            tracing_appender::non_blocking(f)
        }
        None => tracing_appender::non_blocking(std::io::stderr()),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(file.is_none());
    // A second init (tests, the control room re-executing itself) keeps the first.
    let _ = match format {
        LogFormat::Pretty => builder.compact().try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(LogGuard { _writer: guard })
}
