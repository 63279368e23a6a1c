//! The settings of the Neutron API as flags, for every role that serves it (`api`, `all-in-one`, and `node
//! --listen`): Neutron's ML2 type-driver options under their Neutron names.

use anyhow::{anyhow, bail, Result};
use clap::Args;
use control::api::segments::{parse_ranges, parse_vlan_ranges, Segments};
use control::api::{QuotaDefaults, Settings};
use control::model::NetworkType;

/// How the API knows who asks: nobody (loopback), a static token, or Keystone.
#[derive(Args, Debug, Clone)]
pub struct AuthArgs {
    /// A static token every request must carry in X-Auth-Token (for an API not on loopback); every
    /// request is then the operator's (admin).
    #[arg(long, env = "DRAGONFLOW_API_TOKEN", conflicts_with = "keystone")]
    token: Option<String>,
    /// Validate Keystone tokens (X-Auth-Token) at this identity URL (http://host:5000/v3): a project
    /// sees and changes its own resources, the admin role all, as Neutron's default policy.
    #[arg(long, env = "DRAGONFLOW_KEYSTONE")]
    keystone: Option<String>,
}

impl AuthArgs {
    pub fn auth(&self) -> control::api::Auth {
        use control::api::Auth;
        match (&self.token, &self.keystone) {
            (Some(t), _) => Auth::Token(t.clone()),
            (None, Some(k)) => Auth::Keystone(k.clone()),
            (None, None) => Auth::Off,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ApiSettingsArgs {
    /// The types a network created without provider attributes may get, tried in order (vxlan, geneve,
    /// gre, vlan, local).
    #[arg(long, default_value = "vxlan", value_delimiter = ',')]
    tenant_network_types: Vec<String>,
    /// VXLAN VNIs for tenant networks: MIN:MAX[,MIN:MAX…].
    #[arg(long, default_value = "1:65535")]
    vni_ranges: String,
    /// Geneve VNIs for tenant networks.
    #[arg(long, default_value = "1:65535")]
    geneve_vni_ranges: String,
    /// GRE keys for tenant networks.
    #[arg(long, default_value = "1:65535")]
    gre_id_ranges: String,
    /// Physical networks for VLAN networks, each with the VLANs tenants get there:
    /// PHYSNET[:MIN:MAX][,…] (none: no VLAN networks).
    #[arg(long, default_value = "")]
    network_vlan_ranges: String,
    /// Physical networks for flat networks, comma-separated; * for any (none: no flat networks).
    #[arg(long, default_value = "", value_delimiter = ',')]
    flat_networks: Vec<String>,
    /// The underlay's MTU; a tunnelled network's is this minus its encapsulation's overhead.
    #[arg(long, default_value_t = 1500)]
    global_physnet_mtu: u32,
    /// The quota limits of a project without its own, over Neutron's defaults: RESOURCE=LIMIT[,…]
    /// (network, subnet, subnetpool, port, router, floatingip, security_group, security_group_rule;
    /// -1 for none).
    #[arg(long, default_value = "")]
    default_quotas: String,
    /// The tunnels' outer IP version (4 or 6).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(4..=6))]
    overlay_ip_version: u8,
}

impl ApiSettingsArgs {
    /// The API's settings, or what is wrong with the flags.
    pub fn settings(&self) -> Result<Settings> {
        if !matches!(self.overlay_ip_version, 4 | 6) {
            bail!("--overlay-ip-version {}: 4 or 6", self.overlay_ip_version);
        }
        if !(576..=65535).contains(&self.global_physnet_mtu) {
            bail!("--global-physnet-mtu {}: between 576 and 65535", self.global_physnet_mtu);
        }
        let tenant_types = self
            .tenant_network_types
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| t.parse::<NetworkType>().map_err(|e| anyhow!("--tenant-network-types: {e}")))
            .collect::<Result<Vec<_>>>()?;
        if tenant_types.contains(&NetworkType::Flat) {
            bail!(
                "--tenant-network-types: flat networks are made by an admin, with a physical network, not for tenants"
            );
        }
        let ranges = |flag: &str, s: &str, max: u32| parse_ranges(s, (1, max)).map_err(|e| anyhow!("--{flag}: {e}"));
        let segments = Segments {
            tenant_types,
            vxlan: ranges("vni-ranges", &self.vni_ranges, (1 << 24) - 1)?,
            geneve: ranges("geneve-vni-ranges", &self.geneve_vni_ranges, (1 << 24) - 1)?,
            gre: ranges("gre-id-ranges", &self.gre_id_ranges, u32::MAX)?,
            vlan: parse_vlan_ranges(&self.network_vlan_ranges).map_err(|e| anyhow!("--network-vlan-ranges: {e}"))?,
            flat: self.flat_networks.iter().filter(|f| !f.is_empty()).cloned().collect(),
            physnet_mtu: self.global_physnet_mtu,
            overlay_ip_version: self.overlay_ip_version,
        };
        let quotas = QuotaDefaults::parse(&self.default_quotas).map_err(|e| anyhow!("--default-quotas: {e}"))?;
        Ok(Settings { segments: segments.into(), quotas: quotas.into() })
    }
}
