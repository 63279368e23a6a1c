#![no_main]
use libfuzzer_sys::fuzz_target;
use pipelines::wire::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ArpPacket::new_checked(data) {
        if let Ok(r) = ArpRepr::parse(&p) {
            let mut out = [0u8; 28];
            r.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
            assert_eq!(&out[..], &data[..28]);
        }
    }
});
