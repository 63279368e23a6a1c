#![no_main]
use libfuzzer_sys::fuzz_target;
use pipelines::wire::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = UdpPacket::new_checked(data) {
        let _ = (p.payload(), p.verify_checksum(12345, true), UdpRepr::parse(&p));
    }
});
