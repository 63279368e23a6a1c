//! The counters in the log: every `--stats-interval` seconds, what moved since the last lines, with its
//! rate beside the total (a quiet switch writes nothing); the whole report once at exit.

use std::io::Write;
use std::time::Instant;

use dataplane::{PortReport, Report, WorkerReport};

/// What was logged last, to tell what moved since.
#[derive(Default)]
pub struct StatsLog {
    last: Option<(Instant, Report)>,
}

impl StatsLog {
    /// Logs to stderr what moved since the last call (nothing if nothing did), with per-second rates.
    pub fn tick(&mut self, r: &Report) {
        // A closed stderr (the terminal gone) must not stop a clean shutdown: write errors are ignored.
        let _ = self.tick_to(&mut std::io::stderr().lock(), Instant::now(), r);
    }

    fn tick_to(&mut self, out: &mut impl Write, now: Instant, r: &Report) -> std::io::Result<()> {
        let Some((then, last)) = &self.last else {
            self.last = Some((now, r.clone()));
            return full_to(out, r);
        };
        let secs = now.duration_since(*then).as_secs_f64().max(1e-3);
        let rate = |new: u64, old: u64| new.saturating_sub(old) as f64 / secs;
        for p in &r.ports {
            let old = last.ports.iter().find(|o| o.index == p.index && o.name == p.name);
            if old.is_some_and(|o| same_port(o, p)) {
                continue;
            }
            let (rx, tx, drops) = old.map_or((0, 0, 0), |o| (o.rx, o.tx, dropped(o)));
            writeln!(
                out,
                "{} | rx {:.0} pps tx {:.0} pps drops {:.0} pps",
                port_line(p),
                rate(p.rx, rx),
                rate(p.tx, tx),
                rate(dropped(p), drops)
            )?;
        }
        for w in &r.workers {
            let old = last.workers.iter().find(|o| o.lcore == w.lcore);
            if old.is_some_and(|o| (o.rx, o.tx, o.dropped) == (w.rx, w.tx, w.dropped)) {
                continue;
            }
            let (rx, tx) = old.map_or((0, 0), |o| (o.rx, o.tx));
            writeln!(out, "{} | rx {:.0} pps tx {:.0} pps", worker_line(w), rate(w.rx, rx), rate(w.tx, tx))?;
        }
        if r.tables_version != last.tables_version {
            writeln!(out, "tables: version {}", r.tables_version)?;
        }
        if r.latency.samples != last.latency.samples {
            writeln!(out, "{}", latency_line(r))?;
        }
        if r.mempool.in_use != last.mempool.in_use {
            writeln!(out, "{}", mempool_line(r))?;
        }
        self.last = Some((now, r.clone()));
        Ok(())
    }
}

/// Logs the whole report to stderr.
pub fn full(r: &Report) {
    let _ = full_to(&mut std::io::stderr().lock(), r);
}

fn full_to(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    for p in &r.ports {
        writeln!(out, "{}", port_line(p))?;
    }
    for w in &r.workers {
        writeln!(out, "{}", worker_line(w))?;
    }
    writeln!(out, "tables: version {}", r.tables_version)?;
    writeln!(out, "{}", latency_line(r))?;
    writeln!(out, "{}", mempool_line(r))
}

/// Whether a port's counters are where they were (its driver's and the switch's).
fn same_port(a: &PortReport, b: &PortReport) -> bool {
    let hw = |p: &PortReport| {
        let h = &p.hw;
        (h.ipackets, h.opackets, h.imissed, h.ierrors, h.oerrors, h.rx_nombuf)
    };
    (a.rx, a.tx, a.replied, hw(a)) == (b.rx, b.tx, b.replied, hw(b)) && a.drops == b.drops
}

fn dropped(p: &PortReport) -> u64 {
    p.drops.values().sum()
}

fn port_line(p: &PortReport) -> String {
    let drops: Vec<String> = p.drops.iter().filter(|(_, &n)| n > 0).map(|(k, n)| format!("{k}={n}")).collect();
    let h = &p.hw;
    format!(
        "port {}: rx {} tx {} | driver ipackets {} opackets {} imissed {} oerrors {} rx_nombuf {} | link {} changes {} \
         | drops {}",
        p.name,
        p.rx,
        p.tx,
        h.ipackets,
        h.opackets,
        h.imissed,
        h.oerrors,
        h.rx_nombuf,
        if p.link_up { "up" } else { "down" },
        p.link_changes,
        if drops.is_empty() { "none".to_owned() } else { drops.join(" ") }
    )
}

fn worker_line(w: &WorkerReport) -> String {
    format!("worker lcore {}: rx {} tx {} dropped {} idle_polls {}", w.lcore, w.rx, w.tx, w.dropped, w.idle_polls)
}

fn latency_line(r: &Report) -> String {
    let l = &r.latency;
    format!(
        "latency (rx to tx, per burst): samples {} p50 {:.0} ns p99 {:.0} ns p99.9 {:.0} ns max {:.0} ns",
        l.samples, l.p50_ns, l.p99_ns, l.p999_ns, l.max_ns
    )
}

fn mempool_line(r: &Report) -> String {
    let m = &r.mempool;
    format!("mempool: size {} in use at start {} in use now {}", m.size, m.in_use_at_start, m.in_use)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn report(rx: u64, idle: u64) -> Report {
        Report {
            ports: vec![PortReport {
                index: 0,
                name: "net_tap0".into(),
                link_up: true,
                link_changes: 0,
                hw: Default::default(),
                rx,
                tx: rx,
                rx_bursts: rx / 4,
                replied: 0,
                punted: 0,
                handed_off: 0,
                drops: [("l2_switch.no_destination", 0)].into(),
            }],
            workers: vec![WorkerReport { lcore: 1, queues: vec![], rx, tx: rx, dropped: 0, idle_polls: idle }],
            latency: Default::default(),
            mempool: Default::default(),
            tables_version: 0,
            slowpath: Default::default(),
            conntrack: Default::default(),
            nat: Default::default(),
        }
    }

    fn tick(log: &mut StatsLog, at: Instant, r: &Report) -> String {
        let mut out = Vec::new();
        log.tick_to(&mut out, at, r).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_quiet_switch_logs_nothing_a_busy_one_its_rates() {
        let (mut log, t0) = (StatsLog::default(), Instant::now());
        let first = tick(&mut log, t0, &report(100, 5));
        assert!(first.contains("port net_tap0: rx 100 tx 100") && first.contains("tables: version 0"), "{first}");
        // Idle polls go on when nothing moves: still nothing to say.
        assert_eq!(tick(&mut log, t0 + Duration::from_secs(5), &report(100, 900)), "");
        let busy = tick(&mut log, t0 + Duration::from_secs(7), &report(2100, 901));
        assert!(busy.contains("port net_tap0: rx 2100 tx 2100"), "{busy}");
        assert!(busy.contains("rx 1000 pps tx 1000 pps drops 0 pps"), "{busy}");
        assert!(busy.contains("worker lcore 1: rx 2100") && busy.contains("| rx 1000 pps"), "{busy}");
        assert!(!busy.contains("tables") && !busy.contains("mempool"), "only what moved: {busy}");
        let mut dropped = report(2100, 902);
        dropped.ports[0].drops.insert("l2_switch.no_destination", 30);
        let d = tick(&mut log, t0 + Duration::from_secs(10), &dropped);
        assert!(d.contains("drops l2_switch.no_destination=30 | rx 0 pps tx 0 pps drops 10 pps"), "{d}");
    }
}
