#![no_main]
use libfuzzer_sys::fuzz_target;
use pipelines::wire::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Dhcpv6Packet::new_checked(data) {
        let _ = (p.msg_type(), p.transaction_id(), p.relay_header(), p.options().count());
        if let Ok(r) = Dhcpv6Repr::parse(&p) {
            let mut out = vec![0u8; r.buffer_len()];
            if r.emit(&mut Dhcpv6Packet::new_unchecked(&mut out[..])).is_ok() {
                assert_eq!(Dhcpv6Repr::parse(&Dhcpv6Packet::new_checked(&out[..]).unwrap()).unwrap(), r);
            }
        }
    }
});
