//! Trace context through the dataflow: the W3C `traceparent`s of the events
//! a batch carries (CloudEvents' distributed-tracing extension), so each
//! node's span for that batch joins the producers' traces.
//!
//! A batch mixes events of many traces. A span has one parent, so a batch
//! from a single trace becomes a child of it, and a batch from several links
//! to each (OpenTelemetry's model for batch processing), up to
//! [`MAX_LINKS`] of them.

use std::sync::Arc;

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Most traces one batch span links to; more would bloat every span.
pub const MAX_LINKS: usize = 32;

/// The distinct producer trace contexts of a batch's events.
#[derive(Debug, Clone, Default)]
pub struct BatchTrace(Option<Arc<[SpanContext]>>);

impl BatchTrace {
    /// Whether no event of the batch carried a trace context.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Joins `span` to the producers' traces: child of the one trace, or
    /// linked to each of several. Without an OpenTelemetry layer this does
    /// nothing.
    pub fn join(&self, span: &tracing::Span) {
        match self.0.as_deref() {
            None | Some([]) => {}
            // One trace (its events may have different parent spans): the
            // first event's span is the batch's parent.
            Some([first, rest @ ..]) if rest.iter().all(|c| c.trace_id() == first.trace_id()) => {
                // Fails only when no OpenTelemetry layer records the span.
                let _ = span.set_parent(Context::new().with_remote_span_context(first.clone()));
            }
            Some(_) => self.link(span),
        }
    }

    /// Links `span` to every producer trace; unlike a parent, a link can
    /// be added to a span already running (one that learned the traces
    /// while processing, such as decode's).
    pub fn link(&self, span: &tracing::Span) {
        for context in self.0.iter().flat_map(|c| c.iter()) {
            span.add_link(context.clone());
        }
    }
}

/// Collects the `traceparent`s of a batch's events, keeping the valid,
/// distinct ones up to [`MAX_LINKS`].
#[derive(Default)]
pub struct TraceCollector {
    seen: Vec<String>,
    contexts: Vec<SpanContext>,
}

impl TraceCollector {
    pub fn add(&mut self, traceparent: &str) {
        if self.contexts.len() >= MAX_LINKS
            || self.seen.len() >= 4 * MAX_LINKS
            || self.seen.iter().any(|s| s == traceparent)
        {
            return;
        }
        self.seen.push(traceparent.to_string());
        if let Some(context) = parse_traceparent(traceparent) {
            self.contexts.push(context);
        }
    }

    /// The collected contexts; the collector starts over.
    pub fn finish(&mut self) -> BatchTrace {
        self.seen.clear();
        if self.contexts.is_empty() {
            return BatchTrace::default();
        }
        BatchTrace(Some(std::mem::take(&mut self.contexts).into()))
    }
}

/// A W3C `traceparent` value (`00-<32 hex trace id>-<16 hex parent id>-<2
/// hex flags>`), if valid; an invalid one is ignored, as the W3C Trace
/// Context spec asks of a receiver.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    // Version ff is forbidden; a later version may add fields after flags.
    if !hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if !hex(trace, 32) || !hex(parent, 16) || !hex(flags, 2) {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(parent).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    // All-zero ids are invalid.
    context.is_valid().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn reads_a_w3c_traceparent_and_ignores_garbage() {
        let sc = parse_traceparent(TP).unwrap();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(sc.is_remote() && sc.is_sampled());
        assert!(parse_traceparent("00-ab-cd-01").is_none());
        assert!(parse_traceparent("").is_none());
        assert!(
            parse_traceparent(&TP.replace("4bf9", "4BF9")).is_none(),
            "lowercase only"
        );
        assert!(parse_traceparent(&format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32))).is_none());
        assert!(
            parse_traceparent(&format!("{TP}-extra")).is_none(),
            "version 00 has 4 fields"
        );
        assert!(
            parse_traceparent(&format!("01{}-extra", &TP[2..])).is_some(),
            "a later version may add fields"
        );
        assert!(
            !parse_traceparent(&TP.replace("-01", "-00"))
                .unwrap()
                .is_sampled()
        );
    }

    #[test]
    fn keeps_distinct_contexts_up_to_the_cap() {
        let mut c = TraceCollector::default();
        c.add(TP);
        c.add(TP);
        c.add("not a traceparent");
        let t = c.finish();
        assert_eq!(t.0.as_deref().map(<[_]>::len), Some(1));
        assert!(c.finish().is_empty());
        for i in 0..100 {
            c.add(&format!("00-{:032x}-00f067aa0ba902b7-01", i + 1));
        }
        assert_eq!(c.finish().0.as_deref().map(<[_]>::len), Some(MAX_LINKS));
    }
}
