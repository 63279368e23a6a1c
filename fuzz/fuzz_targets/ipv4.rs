#![no_main]
use libfuzzer_sys::fuzz_target;
use pipelines::wire::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Ipv4Packet::new_checked(data) {
        let _ = p.payload();
        if let Ok(r) = Ipv4Repr::parse(&p) {
            let mut out = vec![0u8; r.buffer_len() + r.payload_len];
            r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]));
            assert!(Ipv4Packet::new_checked(&out[..]).unwrap().verify_checksum());
        }
        let mut copy = data.to_vec();
        let mut m = Ipv4Packet::new_unchecked(&mut copy[..]);
        m.decrement_ttl();
        m.rewrite_src(Ipv4Addr::new(1, 2, 3, 4));
    }
});
