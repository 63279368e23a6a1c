#![no_main]
use libfuzzer_sys::fuzz_target;
use pipelines::wire::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = EthernetFrame::new_checked(data) {
        if let Ok(r) = EthernetRepr::parse(&f) {
            let mut out = [0u8; 14];
            r.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
            assert_eq!(&out[..], &data[..14]);
        }
    }
});
