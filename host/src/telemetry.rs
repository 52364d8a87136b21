//! Logging (human-readable text in development, JSON lines in production) and, when
//! OTEL_EXPORTER_OTLP_ENDPOINT is set, OpenTelemetry traces exported over OTLP/HTTP.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Flushes exported spans when dropped; keep it until the process ends.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(traces) = self.traces.take()
            && let Err(e) = traces.shutdown()
        {
            eprintln!("floh: could not flush the last spans to the OTLP collector: {e}");
        }
    }
}

/// Installs the global subscriber. `level` and `otlp` have been validated with the
/// configuration. Call it outside the async runtime: the exporter runs its own thread.
pub fn init(level: &str, format: LogFormat, otlp: Option<&url::Url>) -> Telemetry {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let traces = otlp.and_then(|endpoint| match tracer_provider(endpoint) {
        Ok(provider) => Some(provider),
        Err(e) => {
            eprintln!("floh: OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}: cannot export traces: {e}");
            None
        }
    });
    let spans =
        traces.as_ref().map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("floh")));
    let registry = tracing_subscriber::registry().with(filter).with(spans);
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // A second initialisation (tests running several hosts in one process) keeps the first.
    let _ = match format {
        LogFormat::Text => registry.with(logs).try_init(),
        LogFormat::Json => registry.with(logs.json().flatten_event(true).with_current_span(true)).try_init(),
    };
    Telemetry { traces }
}

fn tracer_provider(endpoint: &url::Url) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::WithExportConfig;
    let url = format!("{}/v1/traces", endpoint.as_str().trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().with_endpoint(url).build()?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name("floh").build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// Records the OpenTelemetry trace id of `span` in its `trace_id` field, so log lines within it
/// name the trace; nothing when traces are not exported.
pub fn record_trace_id(span: &tracing::Span) {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = span.context();
    let trace = context.span().span_context().trace_id();
    if trace != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", trace.to_string());
    }
}

/// This machine's name: HOSTNAME (set in containers), else the kernel's.
pub fn host_name() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}
