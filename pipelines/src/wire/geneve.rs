//! Geneve (RFC 8926): an 8-byte base header after UDP port 6081 (version, options length, O and C flags,
//! protocol type, 24-bit VNI) and then TLV options (class, type, length in 4-byte words, data).

use super::{get_u16, get_u32, set_u16, set_u32, EtherType, Field, Result, WireError};

mod field {
    use super::Field;
    /// Version (2 bits), options length in 4-byte words (6 bits).
    pub const VER_OPT_LEN: usize = 0;
    /// O, C, then 6 reserved bits.
    pub const FLAGS: usize = 1;
    pub const PROTOCOL: Field = 2..4;
    /// 24 bits, then 8 reserved.
    pub const VNI: Field = 4..8;
    pub const OPTIONS: usize = 8;
    /// In an option: class, type, 3 reserved bits and the length in 4-byte words (5 bits), data.
    pub const OPT_CLASS: Field = 0..2;
    pub const OPT_TYPE: usize = 2;
    pub const OPT_LEN: usize = 3;
    pub const OPT_DATA: usize = 4;
}

pub const HEADER_LEN: usize = field::OPTIONS;
/// The IANA port.
pub const UDP_PORT: u16 = 6081;
pub const FLAG_OAM: u8 = 0x80;
pub const FLAG_CRITICAL: u8 = 0x40;
/// The option type bit that marks a critical option (a receiver that does not know it must drop).
pub const OPTION_CRITICAL: u8 = 0x80;

/// A view of a Geneve header, its options and the frame after them.
#[derive(Debug, Clone)]
pub struct GenevePacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> GenevePacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        GenevePacket { buffer }
    }

    /// Checks version 0 (`Unsupported` otherwise) and that the base header and the options fit.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = GenevePacket { buffer };
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if p.version() != 0 {
            return Err(WireError::Unsupported);
        }
        if len < p.header_len() {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_OPT_LEN] >> 6
    }

    /// Length of the options in bytes.
    pub fn options_len(&self) -> usize {
        (self.buffer.as_ref()[field::VER_OPT_LEN] & 0x3f) as usize * 4
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len()
    }

    pub fn oam(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_OAM != 0
    }

    pub fn critical(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_CRITICAL != 0
    }

    pub fn protocol(&self) -> EtherType {
        EtherType::from(get_u16(self.buffer.as_ref(), field::PROTOCOL.start))
    }

    pub fn vni(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::VNI.start) >> 8
    }

    /// The options, in order; an option running past the options area ends the walk with an error.
    pub fn options(&self) -> GeneveOptions<'_> {
        GeneveOptions { rest: &self.buffer.as_ref()[field::OPTIONS..self.header_len()] }
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> GenevePacket<T> {
    /// Sets version 0 and the options length (`bytes` / 4, at most 63 words).
    pub fn set_options_len(&mut self, bytes: usize) {
        self.buffer.as_mut()[field::VER_OPT_LEN] = (bytes / 4) as u8 & 0x3f;
    }

    /// Sets the O and C flags (the reserved bits to zero).
    pub fn set_flags(&mut self, oam: bool, critical: bool) {
        self.buffer.as_mut()[field::FLAGS] =
            (if oam { FLAG_OAM } else { 0 }) | (if critical { FLAG_CRITICAL } else { 0 });
    }

    pub fn set_protocol(&mut self, t: EtherType) {
        set_u16(self.buffer.as_mut(), field::PROTOCOL.start, t.into());
    }

    /// Sets the VNI (24 bits; higher bits are dropped) and the reserved byte to zero.
    pub fn set_vni(&mut self, vni: u32) {
        set_u32(self.buffer.as_mut(), field::VNI.start, (vni & 0x00ff_ffff) << 8);
    }

    /// The options area, as long as the options length says.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS..end]
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// One option, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneveOptionRef<'a> {
    pub class: u16,
    pub typ: u8,
    pub data: &'a [u8],
}

/// The options of a Geneve header.
#[derive(Debug, Clone)]
pub struct GeneveOptions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for GeneveOptions<'a> {
    type Item = Result<GeneveOptionRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 4 {
            self.rest = &[];
            return Some(Err(WireError::Truncated));
        }
        let end = field::OPT_DATA + (self.rest[field::OPT_LEN] & 0x1f) as usize * 4;
        if self.rest.len() < end {
            self.rest = &[];
            return Some(Err(WireError::Truncated));
        }
        let o = GeneveOptionRef {
            class: get_u16(self.rest, field::OPT_CLASS.start),
            typ: self.rest[field::OPT_TYPE],
            data: &self.rest[field::OPT_DATA..end],
        };
        self.rest = &self.rest[end..];
        Some(Ok(o))
    }
}

/// One option, owned; `data` is a multiple of 4 bytes, at most 124.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneveOption {
    pub class: u16,
    pub typ: u8,
    pub data: Vec<u8>,
}

/// A Geneve header, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneveRepr {
    pub oam: bool,
    pub critical: bool,
    pub protocol: EtherType,
    pub vni: u32,
    pub options: Vec<GeneveOption>,
}

impl GeneveRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &GenevePacket<T>) -> Result<GeneveRepr> {
        let options = p
            .options()
            .map(|o| o.map(|o| GeneveOption { class: o.class, typ: o.typ, data: o.data.to_vec() }))
            .collect::<Result<Vec<_>>>()?;
        Ok(GeneveRepr { oam: p.oam(), critical: p.critical(), protocol: p.protocol(), vni: p.vni(), options })
    }

    fn options_len(&self) -> usize {
        self.options.iter().map(|o| 4 + o.data.len()).sum()
    }

    pub fn buffer_len(&self, payload_len: usize) -> usize {
        HEADER_LEN + self.options_len() + payload_len
    }

    /// Writes the header and options in front of the payload; `Malformed` if the VNI needs more than 24
    /// bits, an option's data is not a multiple of 4 bytes or longer than 124, or the options exceed 252
    /// bytes; `Truncated` if the buffer cannot hold the header and options.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut GenevePacket<T>) -> Result<()> {
        let opts = self.options_len();
        let bad_option = self.options.iter().any(|o| o.data.len() % 4 != 0 || o.data.len() > 124);
        if self.vni > 0x00ff_ffff || bad_option || opts > 252 {
            return Err(WireError::Malformed);
        }
        if p.buffer.as_ref().len() < HEADER_LEN + opts {
            return Err(WireError::Truncated);
        }
        p.set_options_len(opts);
        p.set_flags(self.oam, self.critical);
        p.set_protocol(self.protocol);
        p.set_vni(self.vni);
        let b = p.options_mut();
        let mut at = 0;
        for o in &self.options {
            let end = at + field::OPT_DATA + o.data.len();
            set_u16(b, at + field::OPT_CLASS.start, o.class);
            b[at + field::OPT_TYPE] = o.typ;
            b[at + field::OPT_LEN] = (o.data.len() / 4) as u8;
            b[at + field::OPT_DATA..end].copy_from_slice(&o.data);
            at = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OVN's Geneve header: VNI = the datapath's tunnel key, one option of class 0x0102 (OVN), type
    /// 0x80 (critical), 4 bytes carrying the logical in/out ports.
    const OVN: [u8; 16] = [0x02, 0x40, 0x65, 0x58, 0, 0, 0x05, 0, 0x01, 0x02, 0x80, 0x01, 0x00, 0x01, 0x00, 0x02];

    #[test]
    fn parses_ovn_style_header_with_one_option() {
        let p = GenevePacket::new_checked(&OVN[..]).unwrap();
        let r = GeneveRepr::parse(&p).unwrap();
        assert_eq!((r.vni, r.critical, r.oam, r.protocol), (5, true, false, EtherType::TransparentEthernet));
        assert_eq!(r.options, vec![GeneveOption { class: 0x0102, typ: 0x80, data: vec![0, 1, 0, 2] }]);
        let mut out = [0u8; 16];
        r.emit(&mut GenevePacket::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, OVN);
    }

    #[test]
    fn truncated_options_and_versions() {
        assert_eq!(GenevePacket::new_checked(&OVN[..12]).unwrap_err(), WireError::Truncated);
        let mut v1 = OVN;
        v1[0] |= 0x40;
        assert_eq!(GenevePacket::new_checked(&v1[..]).unwrap_err(), WireError::Unsupported);
        // The option claims 8 bytes of data inside a 4-byte options area.
        let mut long = OVN;
        long[11] = 2;
        let p = GenevePacket::new_checked(&long[..]).unwrap();
        assert_eq!(p.options().collect::<Vec<_>>(), vec![Err(WireError::Truncated)]);
        assert_eq!(GeneveRepr::parse(&p).unwrap_err(), WireError::Truncated);
        let bad = GeneveRepr {
            oam: false,
            critical: false,
            protocol: EtherType::Ipv4,
            vni: 1,
            options: vec![GeneveOption { class: 1, typ: 1, data: vec![1, 2, 3] }],
        };
        let mut out = [0u8; 16];
        assert_eq!(bad.emit(&mut GenevePacket::new_unchecked(&mut out[..])).unwrap_err(), WireError::Malformed);
        let big_vni = GeneveRepr { vni: 1 << 24, options: vec![], ..bad.clone() };
        assert_eq!(big_vni.emit(&mut GenevePacket::new_unchecked(&mut out[..])).unwrap_err(), WireError::Malformed);
        let ok = GeneveRepr { options: vec![GeneveOption { class: 1, typ: 1, data: vec![0; 8] }], ..bad };
        assert_eq!(ok.emit(&mut GenevePacket::new_unchecked(&mut out[..15])).unwrap_err(), WireError::Truncated);
    }

    #[test]
    fn options_end_where_the_header_says_and_the_payload_follows() {
        // Two options (4 and 0 bytes of data), then an inner Ethernet frame's first bytes.
        let mut b = [0u8; 8 + 12 + 2];
        let r = GeneveRepr {
            oam: true,
            critical: false,
            protocol: EtherType::TransparentEthernet,
            vni: 0xabcdef,
            options: vec![
                GeneveOption { class: 0x0102, typ: 0x01, data: vec![1, 2, 3, 4] },
                GeneveOption { class: 0xffff, typ: 0x7f, data: vec![] },
            ],
        };
        assert_eq!(r.buffer_len(2), b.len());
        r.emit(&mut GenevePacket::new_unchecked(&mut b[..])).unwrap();
        GenevePacket::new_unchecked(&mut b[..]).payload_mut().copy_from_slice(&[0xfa, 0x16]);
        let p = GenevePacket::new_checked(&b[..]).unwrap();
        assert_eq!((p.version(), p.options_len(), p.header_len(), p.vni(), p.oam()), (0, 12, 20, 0xabcdef, true));
        assert_eq!(p.options().count(), 2);
        assert_eq!(p.payload(), &[0xfa, 0x16]);
        assert_eq!(GeneveRepr::parse(&p).unwrap(), r);
    }
}
