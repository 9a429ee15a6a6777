//! Tracing set-up: pretty or JSON, to stderr or to a file; with an OTLP
//! endpoint, the node's spans to an OpenTelemetry collector as well.

use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogFormat;

/// Keeps the file writer (and the trace exporter) alive; logs and traces
/// are flushed when it drops.
pub struct LogGuard {
    _writer: tracing_appender::non_blocking::WorkerGuard,
    _traces: Option<crate::otlp::Tracing>,
}

/// Where this process's traces go, when they are on.
pub struct Traces<'a> {
    /// The collector's OTLP/HTTP base URL.
    pub endpoint: &'a str,
    /// This process's service name (its node id).
    pub service: &'a str,
    /// Its role.
    pub role: &'a str,
}

/// Installs the global subscriber. `RUST_LOG` overrides the default filter.
pub fn init(format: LogFormat, file: Option<&Path>, traces: Option<Traces<'_>>) -> anyhow::Result<LogGuard> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,rumqttd=warn,rumqttc=warn,sled=warn"))
        // Spans for the collector only: log lines stay as they are.
        .add_directive(format!("{}=off", crate::otlp::TARGET).parse()?);
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
    let (layers, tracing) = layers(format, writer, file.is_none(), filter, traces)?;
    // A second init (tests, the control room re-executing itself) keeps the first.
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(LogGuard {
        _writer: guard,
        _traces: tracing,
    })
}

/// One layer of the subscriber.
type Boxed = Box<dyn Layer<Registry> + Send + Sync>;

/// The log layer (through `filter`, without the trace spans) and, with
/// `traces`, the layer that sends spans to the collector.
fn layers<W>(
    format: LogFormat,
    writer: W,
    ansi: bool,
    filter: EnvFilter,
    traces: Option<Traces<'_>>,
) -> anyhow::Result<(Vec<Boxed>, Option<crate::otlp::Tracing>)>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    let logs = match format {
        LogFormat::Pretty => logs.compact().with_filter(filter).boxed(),
        LogFormat::Json => logs.json().flatten_event(true).with_filter(filter).boxed(),
    };
    // A list, not an `Option` layer: a `None` layer counts as interested in
    // every callsite, which would build the trace spans even with traces off.
    let mut layers = vec![logs];
    let mut tracing = None;
    if let Some(t) = traces {
        let (spans, guard) = crate::otlp::layer(t.endpoint, t.service, t.role)?;
        layers.push(spans.boxed());
        tracing = Some(guard);
    }
    Ok((layers, tracing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_traces_off_the_trace_spans_are_not_even_built() {
        let filter = EnvFilter::new("info").add_directive("pizza::trace=off".parse().unwrap());
        let (layers, tracing) = layers(LogFormat::Json, std::io::sink, false, filter, None).unwrap();
        assert!(tracing.is_none());
        let subscriber = tracing_subscriber::registry().with(layers);
        tracing::subscriber::with_default(subscriber, || {
            let span = crate::otlp::span("cooking", crate::otlp::Kind::Internal, "ord_1");
            assert!(span.is_disabled(), "a trace span with traces off");
            assert!(
                !tracing::info_span!("logged").is_disabled(),
                "log spans still are"
            );
        });
    }
}
