#![no_main]
//! Whole frames through every stage, on the fixture topology: decided, never a panic, and a rewritten
//! reply never grows past the buffer.
use libfuzzer_sys::fuzz_target;
use pipelines::buf::HeapBuf;
use pipelines::drop::DropCounters;
use pipelines::fixtures::two_port_tables;
use pipelines::meta::{Action, Meta};
use pipelines::stages;

fuzz_target!(|data: &[u8]| {
    let t = two_port_tables(data.first().is_some_and(|b| b & 1 == 0));
    let mut pkts = vec![HeapBuf::new(data)];
    let mut meta = vec![Meta::new(0)];
    let mut drops = DropCounters::default();
    stages::run(&t, &mut stages::WorkerState::new(1), &mut pkts, &mut meta, &mut drops);
    assert_ne!(meta[0].action, Action::Continue);
});
