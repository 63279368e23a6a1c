//! The poll-mode worker: one per worker lcore, pinned by the EAL. It polls its rx queues in bursts of 32,
//! runs the forwarding decision over each burst, transmits, and counts. It never blocks, allocates or
//! locks; it checks the stop flag once per pass over its queues and serves latency requests every
//! [`SERVICE_EVERY`](crate::latency::SERVICE_EVERY) passes.
//!
//! With more than one worker and tables that track connections, a worker first hands each received
//! packet whose connection another worker owns (`pipelines::steer`) to that worker's hand-off queue
//! (lock-free, bounded: full, it drops and counts), and once per pass decides what the others handed to
//! it, as if it had received it: both directions of a connection meet one worker's table.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dpdk::{rdtsc, Burst, Mbuf, Mempool, RxQueue, TxQueue, BURST_SIZE};
use hdrhistogram::Histogram;
use pipelines::fate::Fate;
use pipelines::meta::Meta;
use pipelines::publish::Reader;
use pipelines::stages;
use pipelines::stages::l2_switch::FloodPorts;
use pipelines::stages::{provider, tunnel_encap};
use pipelines::tables::{Tables, Uplink};
use pipelines::tunnel;

use pipelines::drop::Reason;

use crate::counters::{bump, PortCounters, WorkerCounters};
use crate::latency::{LatencyRecorder, SERVICE_EVERY};
use crate::options::IDLE_PASSES_BEFORE_SLEEP;
use crate::pkt::{as_pkts, Pkt};
use crate::slowpath::Channels;

/// What the worker runs over each burst.
pub(crate) enum Forwarding {
    /// Every packet out of the rx queue's peer port (`RxAssignment::out`).
    Patch,
    /// Dragonflow's table pipeline over the published tables; `pool` makes the copies of flooded packets;
    /// `tsc_hz`, the TSC's rate, makes the pipeline's clock.
    Pipeline { tables: Reader<Tables>, pool: Mempool, tsc_hz: u64 },
}

/// One rx queue the worker polls, and where its packets go.
pub(crate) struct RxAssignment {
    pub queue: RxQueue,
    /// Index of the port the queue belongs to.
    pub port: usize,
    /// Patch mode: the port index the packets leave by.
    pub out: Option<usize>,
    /// Pipeline mode: passes over the worker's queues that skip this one (0: polled every pass). A port
    /// whose burst was mostly requests over its punt rate (a flood for the slow path) is polled once every
    /// [`THROTTLE_PASSES`] passes instead: its ring fills and the device drops, for free, what it does not
    /// take (the flooding VM's other traffic too, while it floods), and the other ports keep the worker.
    pub skip: u32,
}

/// How many passes a flooding port's queue is left alone: one burst of it for up to 256 bursts of the
/// others (at most 0.4 % of a busy worker's packets), and more often when the worker has less to do (a
/// pass over empty queues is short). Counted in passes, not time: no clock read per pass.
pub(crate) const THROTTLE_PASSES: u32 = 256;

/// A change of the ports a worker serves, from the control thread (a port plugged or unplugged at
/// runtime).
pub(crate) enum Change {
    /// Poll this rx queue too.
    Rx(RxAssignment),
    /// Send to port index `.0` through this tx queue.
    Tx(usize, TxQueue),
    /// Forget port index `.0`: its rx queues and its tx queue. The control thread still holds the port, so
    /// the handles dropped here never close it on a worker.
    Remove(usize),
}

/// Where the control thread posts [`Change`]s for one worker. The worker looks at `posted` once per pass
/// (one relaxed load of a line that only changes with the ports), takes the changes when it moved, and
/// stores the generation it applied in `applied`: past that, it polls and sends only by the new set, and
/// its next pass reads tables published before the post.
#[derive(Default)]
pub(crate) struct Mailbox {
    posted: AtomicU64,
    applied: AtomicU64,
    changes: Mutex<Vec<Change>>,
}

impl Mailbox {
    /// Posts changes; returns the generation to wait for with [`Mailbox::applied`].
    pub fn post(&self, changes: impl IntoIterator<Item = Change>) -> u64 {
        let mut q = self.changes.lock().expect("poisoned");
        q.extend(changes);
        // Release: a worker that sees the new generation sees the changes and everything published before.
        self.posted.fetch_add(1, Ordering::Release) + 1
    }

    /// The last generation the worker applied.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }
}

pub(crate) struct Worker {
    pub rx: Vec<RxAssignment>,
    /// This worker's tx queue on each port it sends to, by port index.
    pub tx: Vec<Option<TxQueue>>,
    pub counters: Arc<WorkerCounters>,
    pub stop: Arc<AtomicBool>,
    pub latency: LatencyRecorder,
    pub tx_retries: u32,
    pub idle_sleep_us: u32,
    pub measure_latency: bool,
    pub forwarding: Forwarding,
    pub mailbox: Arc<Mailbox>,
    /// Every worker's queues (to and from the slow path, and the hand-off queue into it), by worker
    /// index; this worker's are `peers[me]`.
    pub peers: Vec<Arc<Channels>>,
    pub me: usize,
    /// Punts per second per port (0: no limit) and the burst (`pipelines::stages::punt::PuntLimiter`).
    pub punt_rate: u32,
    pub punt_burst: u32,
    /// Connections the worker may track (`pipelines::conntrack`).
    pub conntrack_max: u32,
    /// Connections the worker may translate (`pipelines::nat`).
    pub nat_max: u32,
}

/// What a worker hands back when it stops.
pub(crate) struct WorkerExit {
    pub lcore: u32,
    pub latency: Histogram<u64>,
}

impl Worker {
    /// Polls until the stop flag is set; returns the latency samples not yet collected.
    pub fn run(mut self, lcore: u32) -> WorkerExit {
        match (std::mem::replace(&mut self.forwarding, Forwarding::Patch), self.measure_latency) {
            (Forwarding::Patch, true) => self.poll_loop::<true>(),
            (Forwarding::Patch, false) => self.poll_loop::<false>(),
            (Forwarding::Pipeline { mut tables, pool, tsc_hz }, timed) => {
                if timed {
                    self.pipeline_loop::<true>(&mut tables, &pool, tsc_hz);
                } else {
                    self.pipeline_loop::<false>(&mut tables, &pool, tsc_hz);
                }
                tables.offline();
            }
        }
        WorkerExit { lcore, latency: self.latency.into_histogram() }
    }

    /// The table pipeline: per pass, a quiescent point (the tables of this pass); per burst, the clock is
    /// read once (the pipeline's `now_ms`, from the TSC), the stages decide, then packets are moved into
    /// one tx burst per destination port and sent.
    fn pipeline_loop<const TIMED: bool>(&mut self, reader: &mut Reader<Tables>, pool: &Mempool, tsc_hz: u64) {
        let Worker { rx, tx, counters, stop, latency, tx_retries, mailbox, peers, me, .. } = self;
        let (me, channels) = (*me, &*peers[*me]);
        // More than one worker: the packets of connections another worker owns go to it while the tables
        // track connections (`pipelines::steer`), and this worker takes the ones it owns from the others.
        let steering = peers.len() > 1;
        let mut burst: Burst = Burst::new();
        let mut kept: Burst = Burst::new();
        let mut held = None;
        let mut out: Vec<Burst> = (0..tx.len()).map(|_| Burst::new()).collect();
        let mut meta = [Meta::default(); BURST_SIZE];
        let mut clock = PassClock::<TIMED>::new(self.idle_sleep_us);
        let tsc_per_ms = (tsc_hz / 1000).max(1);
        // The worker's own pipeline state; the TSC's low bits seed its randomness.
        let mut state =
            stages::WorkerState::with_limits(rdtsc() as u32, self.conntrack_max as usize, self.nat_max as usize);
        huge_pages(&state.conntrack);
        // Its share of the SNAT ports: the replies of its translations are steered to it by port.
        state.nat.set_ports(pipelines::nat::port_range(me, peers.len()));
        state.punt = stages::punt::PuntLimiter::new(self.punt_rate, self.punt_burst, crate::MAX_PORTS);
        let mut seen = 0;
        // When next to ask for the underlay's next hops that are unresolved or due for a refresh.
        let mut next_ask = 0;
        while !stop.load(Ordering::Relaxed) {
            if mailbox.posted.load(Ordering::Relaxed) != seen {
                seen = take_changes(mailbox, rx, tx, &mut out).unwrap_or(seen);
            }
            let tables = reader.enter();
            if tables.underlay.is_some() {
                let now = rdtsc();
                if now >= next_ask {
                    next_ask = now + tsc_per_ms * 250;
                    ask_next_hops(&tables, pool, &mut out, tx, *tx_retries, counters);
                }
            }
            if !channels.inject.is_empty() {
                inject(channels, &mut out, tx, *tx_retries, counters);
            }
            let steer = steering && (tables.tracking || tables.snat || !tables.nat_in.is_empty());
            let mut got = 0;
            let mut run =
                Run { tables: &tables, state: &mut state, meta: &mut meta, out: &mut out, pool, channels, tsc_per_ms };
            for a in rx.iter_mut() {
                if a.skip != 0 {
                    a.skip -= 1;
                    continue;
                }
                let n = a.queue.rx_burst(&mut burst);
                if n == 0 {
                    continue;
                }
                got += n;
                let c_in = received(counters, a.port, n);
                if steer && hand_off(&tables, peers, me, a.port, &mut burst, &mut kept, c_in) == 0 {
                    continue;
                }
                let refused = run.burst(&mut burst, a.port, tx, *tx_retries, counters, c_in);
                if refused >= 8 && refused * 2 >= n {
                    a.skip = THROTTLE_PASSES;
                }
                clock.burst_sent(latency);
            }
            if steering && (held.is_some() || !channels.handoff.is_empty()) {
                // What the other workers handed over, in runs of one in-port (each hands a burst's packets
                // over together), a burst at most per run: counted against that port, as if this worker
                // had received them. The packet that ends the last run waits for the next pass, first.
                let mut next = held.take().or_else(|| channels.handoff.pop());
                for _ in 0..crate::slowpath::QUEUE_LEN / BURST_SIZE {
                    let Some((_, port)) = next else { break };
                    let p = usize::from(port);
                    while let Some((m, _)) = next.take_if(|(_, q)| *q == port && !burst.is_full()) {
                        let _ = burst.push(m);
                        next = channels.handoff.pop();
                    }
                    got += burst.len();
                    match counters.ports.get(p) {
                        Some(c_in) => {
                            run.burst(&mut burst, p, tx, *tx_retries, counters, c_in);
                        }
                        // (No such port: never handed over; freed.)
                        None => drop(burst.free_all()),
                    }
                    clock.burst_sent(latency);
                }
                held = next;
            }
            if got != 0 {
                counters.conntrack.update(&state.conntrack);
                counters.nat.update(&state.nat);
            }
            clock.pass_done(got, counters, latency);
        }
    }

    /// The loop, with latency measurement decided at compile time so the untimed loop has no branch for it.
    ///
    /// Timing costs one TSC read per burst: the read that ends one burst's sample (after its tx) starts the
    /// next one, and a pass that found no packet on any queue restarts the clock. So a sample spans the
    /// `rx_burst` call that returned the packets, the forwarding decision and the `tx_burst` that sent them,
    /// plus the empty polls of the worker's other queues since the previous burst (time the packets spent
    /// waiting in their rx ring for this worker).
    fn poll_loop<const TIMED: bool>(&mut self) {
        let Worker { rx, tx, counters, stop, latency, tx_retries, .. } = self;
        let mut burst: Burst = Burst::new();
        let mut clock = PassClock::<TIMED>::new(self.idle_sleep_us);
        while !stop.load(Ordering::Relaxed) {
            let mut got = 0;
            for a in rx.iter_mut() {
                let n = a.queue.rx_burst(&mut burst);
                if n == 0 {
                    continue;
                }
                got += n;
                let c_in = received(counters, a.port, n);
                match a.out.and_then(|o| tx[o].as_mut().map(|q| (o, q))) {
                    Some((o, q)) => transmit(q, &mut burst, *tx_retries, &counters.ports[o], c_in),
                    None => c_in.drop(Reason::PatchNoPeer, burst.free_all() as u64),
                }
                clock.burst_sent(latency);
            }
            clock.pass_done(got, counters, latency);
        }
    }
}

/// Counts a received burst; the in-port's counters.
#[inline(always)]
fn received(counters: &WorkerCounters, port: usize, n: usize) -> &PortCounters {
    let c = &counters.ports[port];
    bump(&c.rx, n as u64);
    bump(&c.rx_bursts, 1);
    c
}

/// What deciding and sending a burst needs, for one pass.
struct Run<'a> {
    tables: &'a Tables,
    state: &'a mut stages::WorkerState,
    meta: &'a mut [Meta; BURST_SIZE],
    out: &'a mut Vec<Burst>,
    pool: &'a Mempool,
    channels: &'a Channels,
    tsc_per_ms: u64,
}

impl Run<'_> {
    /// Decides the burst (all of it from port `port`), moves each packet to its port's tx burst (or the
    /// slow path, or frees it), and sends. Returns how many requests the punt limits refused.
    #[inline(always)]
    fn burst(
        &mut self,
        burst: &mut Burst,
        port: usize,
        tx: &mut [Option<TxQueue>],
        retries: u32,
        counters: &WorkerCounters,
        c_in: &PortCounters,
    ) -> usize {
        let Run { tables, state, meta, out, pool, channels, tsc_per_ms } = self;
        let n = burst.len();
        for m in burst.as_slice() {
            m.prefetch_data();
        }
        let meta = &mut meta[..n];
        for m in meta.iter_mut() {
            *m = Meta::new(port as u16);
        }
        state.now_ms = rdtsc() / *tsc_per_ms;
        let decided = stages::decide(tables, state, as_pkts(burst.as_mut_slice()), meta);
        let refused = state.punt.take_refused() as usize;
        match decided.one_port().map(usize::from) {
            // The common case, a whole burst to one port, leaves the burst as it is.
            // (The port's burst is empty between rx bursts: everything queued was sent.)
            Some(p) if p < out.len() && out[p].is_empty() => std::mem::swap(burst, &mut out[p]),
            _ => {
                // (A flood's copies for other nodes may fill a port's burst: it is sent then.)
                let mut send = |p: usize, ob: &mut Burst| send(tx, p, ob, retries, counters, c_in);
                for fate in decided.fates(tables) {
                    let pkt = burst.pop_front().expect("one packet per meta");
                    dispatch(tables, fate, pool, c_in, pkt, out, &mut send, &channels.punt);
                }
            }
        }
        for (p, ob) in out.iter_mut().enumerate() {
            if !ob.is_empty() {
                send(tx, p, ob, retries, counters, c_in);
            }
        }
        refused
    }
}

/// Hands the packets of `burst` whose connection another worker owns ([`pipelines::steer::owner`]) to
/// that worker's hand-off queue (a full queue drops and counts them: `handoff.ring_full`); returns how
/// many stay, in `burst`, in their order.
#[inline]
fn hand_off(
    t: &Tables,
    peers: &[Arc<Channels>],
    me: usize,
    port: usize,
    burst: &mut Burst,
    kept: &mut Burst,
    c_in: &PortCounters,
) -> usize {
    let n = burst.len();
    let mut owners = [me as u16; BURST_SIZE];
    let mut others = 0;
    for (o, m) in owners.iter_mut().zip(burst.as_slice()) {
        if let Some(w) = pipelines::steer::owner(t, port as u16, m.data(), peers.len()) {
            *o = w as u16;
            others += usize::from(w != me);
        }
    }
    if others == 0 {
        return n;
    }
    for &o in &owners[..n] {
        let m = burst.pop_front().expect("one owner per packet");
        if usize::from(o) == me {
            let _ = kept.push(m);
        } else if peers[usize::from(o)].handoff.push((m, port as u16)).is_ok() {
            bump(&c_in.handed_off, 1);
        } else {
            // (The packet came back with the error and is freed here.)
            c_in.drop(Reason::HandoffRingFull, 1);
        }
    }
    std::mem::swap(burst, kept);
    burst.len()
}

/// Applies the posted changes, if the control thread is not posting right now (a worker never waits on a
/// lock: it tries again next pass). Returns the generation applied. Allocates (a port plugged is rare).
#[cold]
fn take_changes(
    mailbox: &Mailbox,
    rx: &mut Vec<RxAssignment>,
    tx: &mut Vec<Option<TxQueue>>,
    out: &mut Vec<Burst>,
) -> Option<u64> {
    let mut q = mailbox.changes.try_lock().ok()?;
    let generation = mailbox.posted.load(Ordering::Acquire);
    for c in q.drain(..) {
        match c {
            Change::Rx(a) => rx.push(a),
            Change::Tx(p, queue) => {
                if tx.len() <= p {
                    tx.resize_with(p + 1, || None);
                }
                tx[p] = Some(queue);
            }
            Change::Remove(p) => {
                rx.retain(|a| a.port != p);
                if let Some(t) = tx.get_mut(p) {
                    *t = None;
                }
                while tx.last().is_some_and(Option::is_none) {
                    tx.pop();
                }
            }
        }
    }
    drop(q);
    // The tx bursts are empty between rx bursts: resizing loses no packet.
    out.resize_with(tx.len(), Burst::new);
    mailbox.applied.store(generation, Ordering::Release);
    Some(generation)
}

/// The per-pass bookkeeping both loops share: the latency clock (one TSC read per burst when `TIMED`),
/// idle polls, and serving latency requests every `SERVICE_EVERY` passes.
struct PassClock<const TIMED: bool> {
    t: u64,
    passes: u32,
    /// Empty passes in a row, and how long to sleep after `IDLE_PASSES_BEFORE_SLEEP` of them (0: never).
    idle: u32,
    idle_sleep_us: u32,
}

impl<const TIMED: bool> PassClock<TIMED> {
    #[inline(always)]
    fn new(idle_sleep_us: u32) -> Self {
        PassClock { t: if TIMED { rdtsc() } else { 0 }, passes: 0, idle: 0, idle_sleep_us }
    }

    /// After a burst's tx: its sample ends here and the next one starts.
    #[inline(always)]
    fn burst_sent(&mut self, latency: &mut LatencyRecorder) {
        if TIMED {
            let now = rdtsc();
            latency.record(now.wrapping_sub(self.t));
            self.t = now;
        }
    }

    /// After a pass over every rx queue that found `got` packets in all.
    #[inline(always)]
    fn pass_done(&mut self, got: usize, counters: &WorkerCounters, latency: &mut LatencyRecorder) {
        if got == 0 {
            bump(&counters.idle_polls, 1);
            self.idle = self.idle.saturating_add(1);
            if self.idle_sleep_us != 0 && self.idle >= IDLE_PASSES_BEFORE_SLEEP {
                std::thread::sleep(std::time::Duration::from_micros(u64::from(self.idle_sleep_us)));
            }
            if TIMED {
                self.t = rdtsc();
            }
        } else {
            self.idle = 0;
        }
        self.passes = self.passes.wrapping_add(1);
        if self.passes.is_multiple_of(SERVICE_EVERY) {
            latency.service();
            if TIMED {
                self.t = rdtsc();
            }
        }
    }
}

/// Carries out the fate the pipeline decided for one packet: moves it to its port's tx burst (for a
/// flood, a copy to each local port, to each other node encapsulated and to the uplink tagged, but the
/// last, which gets the packet itself), to the slow path's queue, or frees it, and counts.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dispatch(
    t: &Tables,
    fate: Fate<'_>,
    pool: &Mempool,
    c_in: &PortCounters,
    pkt: Mbuf,
    out: &mut [Burst],
    send: &mut dyn FnMut(usize, &mut Burst),
    punt: &crossbeam_queue::ArrayQueue<(Mbuf, u16)>,
) {
    match fate {
        Fate::Output(port) => push_sending(out, port, pkt, c_in, send),
        Fate::Reply(port) => {
            if (port as usize) < out.len() {
                bump(&c_in.replied, 1);
            }
            push_sending(out, port, pkt, c_in, send)
        }
        Fate::Flood(ports) => flood(t, ports, pool, c_in, pkt, out, send),
        Fate::Punt(port) => {
            if punt.push((pkt, port)).is_ok() {
                bump(&c_in.punted, 1);
            } else {
                // (The packet came back with the error and is freed here.)
                c_in.drop(Reason::PuntRingFull, 1);
            }
        }
        Fate::Drop(reason) => c_in.drop(reason, 1),
    }
}

/// Sends what the slow path queued for this worker (its answers, the node's own packets), each out of
/// its port through this worker's tx queue there; counted against that port.
#[cold]
fn inject(channels: &Channels, out: &mut [Burst], tx: &mut [Option<TxQueue>], retries: u32, counters: &WorkerCounters) {
    for _ in 0..crate::slowpath::QUEUE_LEN {
        let Some((m, port)) = channels.inject.pop() else { break };
        let p = usize::from(port);
        let Some(c) = counters.ports.get(p) else { continue };
        let mut send_now = |p: usize, ob: &mut Burst| send(tx, p, ob, retries, counters, c);
        push_sending(out, port, m, c, &mut send_now);
    }
    for (p, ob) in out.iter_mut().enumerate() {
        if !ob.is_empty() {
            send(tx, p, ob, retries, counters, &counters.ports[p]);
        }
    }
}

/// Sends an ARP request out of the underlay for each next hop that is due ([`tunnel::NextHops::due`]:
/// unresolved, or not confirmed for a while; once a second over every worker).
#[cold]
fn ask_next_hops(
    t: &Tables,
    pool: &Mempool,
    out: &mut [Burst],
    tx: &mut [Option<TxQueue>],
    retries: u32,
    counters: &WorkerCounters,
) {
    let Some(u) = t.underlay else { return };
    let p = usize::from(u.port);
    let Some(c) = counters.ports.get(p) else { return };
    let mut send_now = |p: usize, ob: &mut Burst| send(tx, p, ob, retries, counters, c);
    for ip in t.hops.due(tunnel::now_ms()) {
        let Some(m) = Mbuf::from_bytes(pool, &[0; 60]) else {
            // (Asked for again in a second; what was queued still leaves below.)
            c.drop(Reason::FloodNoMbuf, 1);
            break;
        };
        let mut m = Pkt(m);
        if tunnel::arp_request(&u, ip, &mut m) {
            push_sending(out, u.port, m.0, c, &mut send_now);
        }
    }
    if let Some(ob) = out.get_mut(p).filter(|ob| !ob.is_empty()) {
        send_now(p, ob);
    }
}

/// Where one copy of a flood goes.
enum FloodCopy {
    Port(u16),
    /// In a tunnel to this chassis.
    Node(u32),
    /// Out of a provider network's uplink, tagged.
    Uplink(Uplink),
}

/// A flood: one copy per local port (a port not plugged on this worker is skipped), then one per other
/// node, in a tunnel of the network's segment (head-end replication: `tunnel_encap::to_node` on each
/// copy), then one out of a provider network's uplink, tagged; the last copy is the packet itself.
#[inline(never)]
fn flood(
    t: &Tables,
    ports: FloodPorts<'_>,
    pool: &Mempool,
    c_in: &PortCounters,
    pkt: Mbuf,
    out: &mut [Burst],
    send: &mut dyn FnMut(usize, &mut Burst),
) {
    let (network, nodes, uplink) = (ports.network(), ports.chassis(), ports.uplink());
    let plugged = out.len();
    let local = ports.filter(|&p| (p as usize) < plugged).map(FloodCopy::Port);
    let remote = nodes.iter().map(|&c| FloodCopy::Node(c)).chain(uplink.map(FloodCopy::Uplink));
    let mut copies = local.chain(remote).peekable();
    let mut pkt = Some(pkt);
    while let Some(copy) = copies.next() {
        let buf = match (copies.peek(), pkt.as_ref()) {
            (None, _) => pkt.take(),
            (Some(_), Some(p)) => Mbuf::from_bytes(pool, p.data()),
            (Some(_), None) => None,
        };
        let Some(buf) = buf else {
            c_in.drop(Reason::FloodNoMbuf, 1);
            continue;
        };
        match copy {
            FloodCopy::Port(p) => push(&mut out[p as usize], buf, c_in),
            FloodCopy::Node(c) => {
                let mut buf = Pkt(buf);
                match tunnel_encap::to_node(t, network, c, &mut buf) {
                    Ok(port) => push_sending(out, port, buf.0, c_in, send),
                    Err(reason) => c_in.drop(reason, 1),
                }
            }
            FloodCopy::Uplink(u) => {
                let mut buf = Pkt(buf);
                if provider::push(u, &mut buf) {
                    push_sending(out, u.port, buf.0, c_in, send);
                } else {
                    c_in.drop(Reason::ProviderNoHeadroom, 1);
                }
            }
        }
    }
    if pkt.is_some() {
        // No local port of the flood is plugged on this worker and no node is flooded to: freed here.
        c_in.drop(Reason::TxNoQueue, 1);
    }
}

/// Queues a packet for a port whose burst has room (a local port gets at most one copy per input packet,
/// and the tx bursts are flushed after every rx burst); a full burst is counted, not lost.
#[inline(always)]
fn push(ob: &mut Burst, pkt: Mbuf, c_in: &PortCounters) {
    if ob.push(pkt).is_err() {
        c_in.drop(Reason::TxFull, 1);
    }
}

/// Queues a packet (or a flood's copy) for a port that may get several per input packet (the underlay,
/// an uplink: head-end replication): a full burst is sent first.
fn push_sending(out: &mut [Burst], port: u16, pkt: Mbuf, c_in: &PortCounters, send: &mut dyn FnMut(usize, &mut Burst)) {
    let Some(ob) = out.get_mut(port as usize) else { return c_in.drop(Reason::TxNoQueue, 1) };
    if ob.is_full() {
        send(port as usize, ob);
    }
    push(ob, pkt, c_in);
}

/// Sends port `p`'s burst on this worker's queue, or drops it (`tx.no_queue`: the port is going).
#[inline(always)]
fn send(
    tx: &mut [Option<TxQueue>],
    p: usize,
    ob: &mut Burst,
    retries: u32,
    counters: &WorkerCounters,
    c_in: &PortCounters,
) {
    match tx[p].as_mut() {
        Some(q) => transmit(q, ob, retries, &counters.ports[p], c_in),
        None => c_in.drop(Reason::TxNoQueue, ob.free_all() as u64),
    }
}

/// Sends the burst, retrying the unsent tail `retries` times; counts what left on `out` and frees and
/// counts the rest as `tx.full` against the in-port.
#[inline(always)]
fn transmit(q: &mut TxQueue, b: &mut Burst, retries: u32, out: &PortCounters, c_in: &PortCounters) {
    let mut sent = q.tx_burst(b);
    let mut tries = 0;
    while !b.is_empty() && tries < retries {
        sent += q.tx_burst(b);
        tries += 1;
    }
    bump(&out.tx, sent as u64);
    if !b.is_empty() {
        c_in.drop(Reason::TxFull, b.free_all() as u64);
    }
}

/// Asks the system to back the connection table with transparent huge pages (`MADV_HUGEPAGE`: Debian's
/// default mode is `madvise`): its lookups read random lines of two large arrays, and with 4 KiB pages
/// each read would also miss the TLB. Only advice: the table works the same without it.
fn huge_pages(ct: &pipelines::conntrack::Conntrack) {
    for (addr, len) in ct.regions() {
        let start = addr & !4095;
        // SAFETY: advice on the pages of a live allocation (and the page its header shares): no memory is
        // read, written or unmapped.
        let r = unsafe { libc::madvise(start as *mut libc::c_void, addr + len - start, libc::MADV_HUGEPAGE) };
        if r != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "madvise(MADV_HUGEPAGE) on the connection table");
        }
    }
}
