#![no_main]
use libfuzzer_sys::fuzz_target;
use pipelines::wire::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Dhcpv6Packet::new_checked(data) {
        let _ = (p.msg_type(), p.transaction_id(), p.relay_header());
        // Walk the options, and the ones nested in each (IA_NA and friends carry a 12-byte prefix).
        for (_, d) in p.options().flatten() {
            let _ = dhcpv6::Dhcpv6Options::new(d.get(12..).unwrap_or_default()).collect::<Vec<_>>();
        }
        if let Ok(r) = Dhcpv6Repr::parse(&p) {
            let mut out = vec![0u8; r.buffer_len()];
            // Merged repeats of an option can exceed 65,535 bytes: then emit refuses, it must not panic.
            if r.emit(&mut Dhcpv6Packet::new_unchecked(&mut out[..])).is_ok() {
                assert_eq!(Dhcpv6Repr::parse(&Dhcpv6Packet::new_checked(&out[..]).unwrap()).unwrap(), r);
            }
        }
    }
});
