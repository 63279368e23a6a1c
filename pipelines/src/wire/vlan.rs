//! 802.1Q VLAN tags: the 4 bytes after the source MAC when the EtherType is 0x8100 (the view starts at
//! the TCI; the tag's own EtherType field is the frame's).

use super::{get_u16, set_u16, EtherType, Field, Result, WireError};

mod field {
    use super::Field;
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
    pub const PAYLOAD: usize = 4;
}

pub const HEADER_LEN: usize = field::PAYLOAD;

/// A view of a VLAN tag (TCI and inner EtherType).
#[derive(Debug, Clone)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanTag { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(VlanTag { buffer })
    }

    pub fn pcp(&self) -> u8 {
        self.buffer.as_ref()[0] >> 5
    }

    pub fn dei(&self) -> bool {
        self.buffer.as_ref()[0] & 0x10 != 0
    }

    pub fn vid(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::TCI.start) & 0x0fff
    }

    pub fn ethertype(&self) -> EtherType {
        get_u16(self.buffer.as_ref(), field::ETHERTYPE.start).into()
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanTag<T> {
    pub fn set_tci(&mut self, pcp: u8, dei: bool, vid: u16) {
        let tci = ((pcp as u16 & 7) << 13) | ((dei as u16) << 12) | (vid & 0x0fff);
        set_u16(self.buffer.as_mut(), field::TCI.start, tci);
    }

    pub fn set_ethertype(&mut self, t: EtherType) {
        set_u16(self.buffer.as_mut(), field::ETHERTYPE.start, t.into());
    }
}

/// A VLAN tag, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanRepr {
    pub pcp: u8,
    pub dei: bool,
    pub vid: u16,
    pub ethertype: EtherType,
}

impl VlanRepr {
    pub fn parse<T: AsRef<[u8]>>(t: &VlanTag<T>) -> Result<VlanRepr> {
        Ok(VlanRepr { pcp: t.pcp(), dei: t.dei(), vid: t.vid(), ethertype: t.ethertype() })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, t: &mut VlanTag<T>) {
        t.set_tci(self.pcp, self.dei, self.vid);
        t.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_emit() {
        let bytes = [0xb0, 0x64, 0x08, 0x00, 0x45];
        let t = VlanTag::new_checked(&bytes[..]).unwrap();
        let r = VlanRepr::parse(&t).unwrap();
        assert_eq!(r, VlanRepr { pcp: 5, dei: true, vid: 100, ethertype: EtherType::Ipv4 });
        assert_eq!(t.payload(), &[0x45]);
        let mut out = [0u8; 4];
        r.emit(&mut VlanTag::new_unchecked(&mut out[..]));
        assert_eq!(out, bytes[..4]);
        assert_eq!(VlanTag::new_checked(&bytes[..3]).unwrap_err(), WireError::Truncated);
    }
}
