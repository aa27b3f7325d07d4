//! The report of `somaflow bench-chain`: events/s, each operator's share,
//! the work done, and the targets.

use std::time::Duration;

use super::driver::Chain;
use super::{TARGET_EVENTS_PER_SEC, TARGET_POLICY_SHARE, TARGET_RULES};

/// CPU time this thread has run (Linux; None elsewhere).
pub(super) fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

pub(super) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// What one measured run gives the report.
pub(super) struct Measured {
    pub(super) chain: Chain,
    pub(super) events: usize,
    pub(super) wall: Duration,
    pub(super) cpu: Option<Duration>,
    pub(super) dispatched: u64,
    pub(super) rules: usize,
    pub(super) conversation_rules: usize,
}

pub(super) fn ns_per_event(d: Duration, events: usize) -> f64 {
    d.as_nanos() as f64 / events as f64
}

pub(super) fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "missed" }
}

/// Prints the markdown report; fails when a check shows a no-op.
pub(super) fn report(m: &Measured) -> anyhow::Result<()> {
    let n = m.events;
    let wall = m.wall.as_secs_f64();
    let rate = n as f64 / wall.max(1e-9);
    println!(
        "somaflow bench-chain: {n} events, {} on {} ({} cores visible), one thread\n",
        m.chain
            .stages
            .iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
            .join(" → "),
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    match m.cpu {
        Some(cpu) => println!(
            "chain: {rate:.0} events/s ({wall:.3} s wall, {:.3} s on CPU: {:.0} % of the wall time on a core)\n",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() / wall.max(1e-9) * 100.0
        ),
        None => println!("chain: {rate:.0} events/s ({wall:.3} s wall)\n"),
    }
    println!(
        "| operator | rows in | batches ns/event | watermarks ns/event | total ns/event | share of chain |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut staged = Duration::ZERO;
    for s in &m.chain.stages {
        let total = s.process + s.on_watermark;
        staged += total;
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} % |",
            s.name,
            s.rows_in,
            ns_per_event(s.process, n),
            ns_per_event(s.on_watermark, n),
            ns_per_event(total, n),
            total.as_secs_f64() / wall.max(1e-9) * 100.0
        );
    }
    let driver = m.wall.saturating_sub(staged);
    println!(
        "| (driver: routing between operators) | | | | {:.1} | {:.1} % |",
        ns_per_event(driver, n),
        driver.as_secs_f64() / wall.max(1e-9) * 100.0
    );
    println!(
        "| **chain** | {n} | | | {:.1} | 100 % |\n",
        ns_per_event(m.wall, n)
    );
    let t = &m.chain.tally;
    let checks = [
        ("rows decoded", m.chain.stages[1].rows_in),
        ("dead letters", t.side("decode", "dead_letters")),
        (
            "duplicates dropped",
            m.chain.stages[1].rows_in - m.chain.stages[2].rows_in,
        ),
        ("rows enriched with a tenant plan", t.enriched),
        ("policy decisions", t.side("policy", "decisions")),
        ("conversations rated", t.rated),
        ("usage_1m rows", t.side("window", "usage")),
        ("budget events", t.side("budget", "budget_events")),
        ("steps dispatched (counted)", m.dispatched),
        ("dispatch refusals", t.side("dispatch", "decisions")),
        ("rows out of the chain", t.out),
    ];
    println!(
        "work done: {}",
        checks
            .iter()
            .map(|(what, n)| format!("{what} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (what, n) in [
        ("rows enriched", t.enriched),
        ("policy decisions", t.side("policy", "decisions")),
        ("conversations rated", t.rated),
        ("usage_1m rows", t.side("window", "usage")),
        ("steps dispatched", m.dispatched),
    ] {
        anyhow::ensure!(
            n > 0,
            "no {what}: the chain did not do its work, the figures are not valid"
        );
    }
    let policy = m
        .chain
        .stages
        .iter()
        .find(|s| s.name == "policy")
        .map_or(Duration::ZERO, |s| s.process + s.on_watermark);
    let share = policy.as_secs_f64() / wall.max(1e-9);
    println!(
        "targets: ≥ {TARGET_EVENTS_PER_SEC:.0} events/s on one core: {} ({rate:.0}); policy < {:.0} % of the chain with {TARGET_RULES} rules: {} ({:.1} % with {} rules, {} on conversations)",
        met(rate >= TARGET_EVENTS_PER_SEC),
        TARGET_POLICY_SHARE * 100.0,
        met(share < TARGET_POLICY_SHARE && m.rules >= TARGET_RULES),
        share * 100.0,
        m.rules,
        m.conversation_rules
    );
    Ok(())
}
