#![no_main]
use libfuzzer_sys::fuzz_target;
use pipelines::wire::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Icmpv4Packet::new_checked(data) {
        if let Ok(r) = Icmpv4Repr::parse(&p) {
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]));
            assert!(Icmpv4Packet::new_checked(&out[..]).unwrap().verify_checksum());
        }
    }
});
