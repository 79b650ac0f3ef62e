//! Version-2 manifests: one protocol on several chains. What is the same everywhere is written once (the
//! contracts' ABIs and proxy kinds, the actions, the playbooks, the policy); each `[chains.<name>]` table
//! says what differs on that chain (chain id, Safe, timelock, where each contract is, and the values
//! actions refer to as `"$name"`). Each chain is projected onto a version-1 manifest and validated by the
//! same code, with positions that point into the one file; one hash covers every chain.

use super::error::Diags;
use super::raw::{
    RawAction, RawChain, RawConstraint, RawContract, RawLiteral, RawManifest, RawManifestV2, S,
};
use super::validate::build;
use super::{Deployments, Manifest};
use alloy::primitives::B256;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use toml::Spanned;

/// Validates a version-2 manifest. Returns the first chain's view with every deployment attached; the
/// result is meaningful only when `d` stays empty.
pub(crate) fn build_v2(
    d: &mut Diags<'_>,
    raw: &RawManifestV2,
    path: &Path,
    hash: B256,
) -> Option<Manifest> {
    let chains = raw.chains.get_ref();
    if chains.is_empty() {
        d.err(
            raw.chains.span(),
            "a version-2 manifest lists no chains",
            "add one [chains.<name>] table per chain, with chain_id, safe and contracts",
        );
        return None;
    }
    let mut ordered: Vec<(&String, &S<RawChain>)> = chains.iter().collect();
    ordered.sort_by_key(|(_, c)| c.span().start);

    // Every chain's contract must be declared once; every declared contract must be somewhere.
    let mut deployed: BTreeSet<&str> = BTreeSet::new();
    for (name, ch) in &ordered {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            d.err(
                ch.span(),
                format!("chain name {name:?} is not a plain name"),
                "use lowercase letters, digits, - and _ (e.g. mainnet, arbitrum-one)",
            );
        }
        for (id, cc) in &ch.get_ref().contracts {
            if raw.contracts.contains_key(id) {
                deployed.insert(id);
            } else {
                d.err(
                    cc.span(),
                    format!("chain {name}: contract {id:?} is not declared under [contracts]"),
                    format!("declare it once as [contracts.{id}] with its ABI and proxy kind"),
                );
            }
        }
    }
    for (id, c) in &raw.contracts {
        if !deployed.contains(id.as_str()) {
            d.err(
                c.span(),
                format!("contract {id:?} is on no chain"),
                format!("add it to a chain as [chains.<name>.contracts.{id}] with its address, or remove it"),
            );
        }
    }
    for a in &raw.actions {
        let r = a.get_ref();
        let named = r
            .contract
            .iter()
            .chain(r.contracts.iter().flat_map(|l| l.get_ref().iter()));
        for c in named {
            if !raw.contracts.contains_key(c.get_ref()) {
                d.err(
                    c.span(),
                    format!(
                        "action {:?}: contract {:?} is not declared",
                        r.id.get_ref(),
                        c.get_ref()
                    ),
                    "declare it as [contracts.<id>], or fix the id",
                );
            }
        }
    }

    let mut views = Vec::with_capacity(ordered.len());
    let mut ids: BTreeMap<i64, &str> = BTreeMap::new();
    for (name, ch) in &ordered {
        let id = *ch.get_ref().chain_id.get_ref();
        if let Some(other) = ids.insert(id, name) {
            d.err(
                ch.get_ref().chain_id.span(),
                format!("chains {other} and {name} both have chain_id {id}"),
                "each chain appears once; give each its own EIP-155 chain id",
            );
        }
        let projected = project(d, raw, name, ch.get_ref());
        let mut m = build(d, &projected, path, hash);
        m.chain_name = Some((*name).clone());
        views.push(m);
    }
    let mut first = views.first()?.clone();
    first.deployments = Deployments(std::sync::Arc::new(views));
    Some(first)
}

/// One chain as a version-1 manifest: shared parts plus the chain's own, `$name` values substituted.
/// Actions whose contract is not on this chain, and playbooks that use them, are not part of it.
fn project(d: &mut Diags<'_>, raw: &RawManifestV2, name: &str, ch: &RawChain) -> RawManifest {
    let mut contracts = BTreeMap::new();
    for (id, cc) in &ch.contracts {
        let Some(shared) = raw.contracts.get(id) else {
            continue;
        };
        let (sh, cc_ref) = (shared.get_ref(), cc.get_ref());
        contracts.insert(
            id.clone(),
            Spanned::new(
                cc.span(),
                RawContract {
                    address: cc_ref.address.clone(),
                    proxy: sh.proxy.clone(),
                    proxy_admin: cc_ref.proxy_admin.clone(),
                    upgrade_call: sh.upgrade_call.clone(),
                    beacon: cc_ref.beacon.clone(),
                    abi: sh.abi.clone(),
                    abi_json: sh.abi_json.clone(),
                    abi_file: sh.abi_file.clone(),
                    abi_hash: sh.abi_hash.clone(),
                },
            ),
        );
    }
    // Each action as it exists on this chain: a single-contract action when its contract is here; a
    // list action with the listed contracts that are here (none: not on this chain).
    let vars = Vars {
        name,
        ch,
        shared: &raw.vars,
    };
    let mut here: BTreeSet<String> = BTreeSet::new();
    let mut actions = Vec::new();
    for a in &raw.actions {
        let r = a.get_ref();
        let mut on_chain = r.clone();
        match (&r.contract, &r.contracts) {
            (Some(c), None) if contracts.contains_key(c.get_ref()) => {}
            (None, Some(list)) => {
                let present: Vec<S<String>> = list
                    .get_ref()
                    .iter()
                    .filter(|c| contracts.contains_key(c.get_ref()))
                    .cloned()
                    .collect();
                if present.is_empty() {
                    continue;
                }
                on_chain.contracts = Some(Spanned::new(list.span(), present));
            }
            // Both or neither: the validator reports it.
            (Some(_), Some(_)) | (None, None) => {}
            (Some(_), None) => continue,
        }
        here.insert(r.id.get_ref().clone());
        actions.push(Spanned::new(a.span(), vars.action(d, &on_chain)));
    }
    let playbooks = raw
        .playbooks
        .iter()
        .filter(|p| {
            p.get_ref()
                .actions
                .get_ref()
                .iter()
                .all(|a| here.contains(a.get_ref()))
        })
        .cloned()
        .collect();
    RawManifest {
        version: raw.version.clone(),
        name: raw.name.clone(),
        chain_id: ch.chain_id.clone(),
        safe: ch.safe.clone(),
        timelock: ch.timelock.clone(),
        policy: raw.policy.clone(),
        watch: raw
            .watch
            .iter()
            .filter(|w| {
                let w = w.get_ref();
                // A rule about a contract applies on the chains where that contract is deployed.
                w.contract
                    .as_ref()
                    .is_none_or(|c| contracts.contains_key(c.get_ref()))
            })
            .cloned()
            .collect(),
        watch_builtins: raw.watch_builtins.clone(),
        contracts,
        actions,
        playbooks,
    }
}

/// `$name` references to a chain's `[vars]`.
struct Vars<'a> {
    name: &'a str,
    ch: &'a RawChain,
    shared: &'a BTreeMap<String, S<RawLiteral>>,
}

impl Vars<'_> {
    /// The chain's own value, else the manifest's shared one.
    fn get(&self, var: &str) -> Option<&S<RawLiteral>> {
        self.ch.vars.get(var).or_else(|| self.shared.get(var))
    }

    fn undefined(&self, d: &mut Diags<'_>, span: std::ops::Range<usize>, var: &str) {
        d.err(
            span,
            format!("${var} is not defined for chain {}", self.name),
            format!(
                "add {var} = … under [chains.{}] vars (or in the top-level [vars] for every chain)",
                self.name
            ),
        );
    }

    fn literal(&self, d: &mut Diags<'_>, l: &S<RawLiteral>) -> S<RawLiteral> {
        match l.get_ref() {
            RawLiteral::Str(s) if s.starts_with('$') => match self.get(&s[1..]) {
                Some(v) => v.clone(),
                None => {
                    self.undefined(d, l.span(), &s[1..]);
                    l.clone()
                }
            },
            _ => l.clone(),
        }
    }

    fn text(&self, d: &mut Diags<'_>, t: &S<String>) -> S<String> {
        let s = t.get_ref();
        if !s.contains('$') {
            return t.clone();
        }
        // `$name` anywhere in the text (names are letters, digits and _).
        let mut out = String::with_capacity(s.len());
        let mut rest = s.as_str();
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let var = &after[..len];
            match self.get(var) {
                Some(v) if !var.is_empty() => out.push_str(&v.get_ref().as_text()),
                _ => {
                    self.undefined(d, t.span(), var);
                    out.push('$');
                    out.push_str(var);
                }
            }
            rest = &after[len..];
        }
        out.push_str(rest);
        Spanned::new(t.span(), out)
    }

    fn constraint(&self, d: &mut Diags<'_>, c: &S<RawConstraint>) -> S<RawConstraint> {
        let r = c.get_ref();
        let one =
            |d: &mut Diags<'_>, x: &Option<S<RawLiteral>>| x.as_ref().map(|l| self.literal(d, l));
        Spanned::new(
            c.span(),
            RawConstraint {
                eq: one(d, &r.eq),
                one_of: r.one_of.as_ref().map(|list| {
                    Spanned::new(
                        list.span(),
                        list.get_ref().iter().map(|l| self.literal(d, l)).collect(),
                    )
                }),
                min: one(d, &r.min),
                max: one(d, &r.max),
                any: r.any.clone(),
            },
        )
    }

    fn action(&self, d: &mut Diags<'_>, a: &RawAction) -> RawAction {
        RawAction {
            id: a.id.clone(),
            title: a.title.clone(),
            contract: a.contract.clone(),
            contracts: a.contracts.clone(),
            function: a.function.clone(),
            via: a.via.clone(),
            args: a
                .args
                .iter()
                .map(|(k, c)| (k.clone(), self.constraint(d, c)))
                .collect(),
            value: a.value.as_ref().map(|c| self.constraint(d, c)),
            implementation_codehash: a.implementation_codehash.as_ref().map(|t| self.text(d, t)),
            allow_safe_tx_gas: a.allow_safe_tx_gas.clone(),
            requires_role: a.requires_role.as_ref().map(|t| self.text(d, t)),
            expect: a.expect.iter().map(|t| self.text(d, t)).collect(),
            storage_layout: a.storage_layout.as_ref().map(|l| {
                let r = l.get_ref();
                let span = l.span();
                toml::Spanned::new(
                    span,
                    super::raw::RawStorageLayout {
                        current: self.text(d, &r.current),
                        current_hash: r.current_hash.as_ref().map(|t| self.text(d, t)),
                        new: self.text(d, &r.new),
                        new_hash: r.new_hash.as_ref().map(|t| self.text(d, t)),
                        current_codehash: r.current_codehash.as_ref().map(|t| self.text(d, t)),
                        renamed: r.renamed.clone(),
                        retyped: r.retyped.clone(),
                    },
                )
            }),
        }
    }
}
