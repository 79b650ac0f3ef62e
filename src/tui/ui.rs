//! Pure rendering of the console state (ratatui). Works in 80×24 and uses more room when there is some.

use super::app::{App, Confirm, Level, Screen};
use crate::manifest::trust::Trust;
use crate::policy::render::grouped_hex;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

fn fg(app: &App, c: Color) -> Style {
    if app.color {
        Style::default().fg(c)
    } else {
        Style::default()
    }
}

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

fn trust_span(app: &App) -> Span<'static> {
    match &app.trust {
        Trust::Pinned { source } => Span::styled(
            format!("PINNED ({source})"),
            fg(app, Color::Green).add_modifier(Modifier::BOLD),
        ),
        Trust::Approved {
            approvals,
            threshold,
        } => Span::styled(
            format!("APPROVED by {approvals} of {threshold} owners"),
            fg(app, Color::Green).add_modifier(Modifier::BOLD),
        ),
        Trust::Untrusted { .. } => Span::styled(
            "UNTRUSTED — signing disabled",
            fg(app, Color::Red).add_modifier(Modifier::BOLD),
        ),
    }
}

/// Text from a manifest, bundle, device or log, terminal-safe on one line ([`crate::text::sanitize_line`]).
fn t(s: &str) -> String {
    crate::text::sanitize_line(s).into_owned()
}

/// Draws the whole console, then makes sure no cell carries a control, bidi or invisible character
/// (ratatui drops control characters itself; bidi overrides and zero-width characters it would write):
/// such a cell shows U+FFFD instead.
pub fn draw(f: &mut Frame, app: &App) {
    draw_screen(f, app);
    for cell in f.buffer_mut().content.iter_mut() {
        if cell.symbol().chars().any(crate::text::is_unsafe) {
            cell.set_symbol("\u{FFFD}");
        }
    }
}

fn draw_screen(f: &mut Frame, app: &App) {
    let area = f.area();
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Length(if app.alert.is_some() { 3 } else { 0 }),
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .split(area);
    if let Some(a) = &app.alert {
        alert_header(f, app, a, rows[1]);
    }
    let rows = [rows[0], rows[2], rows[3], rows[4]];
    // Header.
    let mut head = vec![Span::styled(" breakglass ", bold())];
    if app.drill {
        head.push(Span::styled(
            " DRILL ",
            fg(app, Color::Black)
                .bg(if app.color {
                    Color::Yellow
                } else {
                    Color::Reset
                })
                .add_modifier(Modifier::BOLD),
        ));
    }
    head.push(Span::raw(format!(
        " {} · {} · ",
        t(&app.manifest.name),
        if app.chains.is_empty() {
            format!("chain {}", app.manifest.chain_id)
        } else {
            t(&app.manifest.chain_label())
        }
    )));
    let compact = area.width < 120;
    if compact {
        head.push(Span::styled(format!("[{}]", app.screen.title()), bold()));
    }
    for s in [
        Screen::Dashboard,
        Screen::Playbooks,
        Screen::Review,
        Screen::Sign,
        Screen::Transfer,
        Screen::Execute,
        Screen::Log,
    ] {
        let key = s.title().chars().next().unwrap_or(' ').to_ascii_lowercase();
        let key = if s == Screen::Execute { 'x' } else { key };
        let label = format!("{key}:{} ", s.title());
        if compact {
            break;
        }
        if s == app.screen {
            head.push(Span::styled(label, bold().add_modifier(Modifier::REVERSED)));
        } else {
            head.push(Span::raw(label));
        }
    }
    f.render_widget(Paragraph::new(Line::from(head)), rows[0]);
    // Body.
    let title = format!(
        " {}{} ",
        app.screen.title(),
        if app.drill { " — DRILL" } else { "" }
    );
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(rows[1]);
    f.render_widget(block, rows[1]);
    match app.screen {
        Screen::Dashboard => dashboard(f, app, inner),
        Screen::Playbooks => playbooks(f, app, inner),
        Screen::Review => review(f, app, inner),
        Screen::Sign => sign(f, app, inner),
        Screen::Transfer => transfer(f, app, inner),
        Screen::Execute => execute(f, app, inner),
        Screen::Log => log(f, app, inner),
    }
    // Status line.
    let status = match (&app.busy, &app.message) {
        (Some(b), _) => Line::from(Span::styled(format!(" … {b}"), fg(app, Color::Yellow))),
        (None, Some((lvl, m))) => {
            let c = match lvl {
                Level::Ok => Color::Green,
                Level::Info => Color::Reset,
                Level::Error => Color::Red,
            };
            Line::from(Span::styled(format!(" {}", t(m)), fg(app, c)))
        }
        _ => Line::from(""),
    };
    f.render_widget(Paragraph::new(status), rows[2]);
    // Footer: the keys that work here.
    let mut keys = Vec::new();
    for (k, what) in app.footer_keys() {
        keys.push(Span::styled(format!(" {k}"), bold()));
        keys.push(Span::raw(format!(" {what} ")));
    }
    f.render_widget(Paragraph::new(Line::from(keys)), rows[3]);
    if app.help {
        help(f, app, area);
    } else if let Some(typed) = &app.fire_input {
        fire_dialog(f, app, typed, area);
    } else if let Some(c) = &app.confirm {
        confirm(f, app, c, area);
    }
}

/// An alert of the chain watcher takes over the header, in red: the rule, the block and the transaction,
/// what happened, and what to do (the proposed playbook, or the ladder).
fn alert_header(f: &mut Frame, app: &App, a: &crate::watch::Alert, area: Rect) {
    let red = if app.color {
        Style::default()
            .fg(Color::White)
            .bg(Color::Red)
            .add_modifier(Modifier::BOLD)
    } else {
        bold().add_modifier(Modifier::REVERSED)
    };
    let ladder = app.ladders.iter().find_map(|l| match l {
        Ok((pb, _, _)) if Some(pb) == a.playbook.as_ref() => Some(pb.clone()),
        _ => None,
    });
    let offer = match (&ladder, &a.playbook) {
        (Some(pb), _) => format!("F fires ladder {pb} · P playbook · A acknowledge"),
        (None, Some(pb)) => format!("P opens playbook {pb} · A acknowledge"),
        (None, None) => "A acknowledge".to_string(),
    };
    let first = format!(
        " ALERT [{}] {} · block {} · {} · {offer}",
        a.severity.as_str().to_uppercase(),
        a.rule,
        a.block,
        a.tx.map_or("no transaction".to_string(), |t| format!("tx {t:#x}")),
    );
    let second = format!(" {}", a.summary);
    f.render_widget(
        Paragraph::new(vec![
            Line::from(Span::styled(t(&first), red)),
            Line::from(Span::styled(t(&second), red)),
        ])
        .wrap(Wrap { trim: false })
        .style(red),
        area,
    );
}

/// The typed confirmation of firing the ladder.
fn fire_dialog(f: &mut Frame, app: &App, typed: &str, area: Rect) {
    let mut what = match app.ladders.get(app.fire_target) {
        Some(Ok((pb, _, crate::ladder::LadderState::Live { rung, nonce, .. }))) => {
            format!("rung {} of ladder {pb} (Safe nonce {nonce})", rung + 1)
        }
        Some(Ok((pb, _, _))) => format!("ladder {pb} (it is not live: firing will be refused)"),
        _ => "the ladder (it is not live: firing will be refused)".to_string(),
    };
    if app.ladders.len() > 1 {
        what = format!(
            "{what} [ladder {} of {}; Tab: next]",
            app.fire_target + 1,
            app.ladders.len()
        );
    }
    let text = format!(
        "FIRE the pre-signed pause: {}?\n\nIt executes now, sent by account 0 of the signer; the signatures are already there.\n\nType fire and press Enter (Esc cancels):  {}_",
        t(&what),
        t(typed)
    );
    let r = centered(area, 64, 11);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Fire the ladder ")
                .style(fg(app, Color::Red)),
        ),
        r,
    );
}

/// The dashboard lines of the ladders the console watches, one each.
fn ladder_lines(app: &App) -> Vec<Line<'static>> {
    let n = app.ladders.len();
    app.ladders
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let label = if n > 1 {
                format!("Ladder {}", i + 1)
            } else {
                "Ladder".to_string()
            };
            ladder_line(app, &label, r)
        })
        .collect()
}

/// One ladder's dashboard line.
fn ladder_line(
    app: &App,
    label: &str,
    r: &Result<(String, usize, crate::ladder::LadderState), String>,
) -> Line<'static> {
    use crate::ladder::LadderState as L;
    let (text, color) = match r {
        Err(e) => (format!("unreadable: {e}"), Color::Red),
        Ok((pb, n, st)) => match st {
            L::Live {
                rung,
                nonce,
                remaining,
            } => (
                format!(
                    "{pb}: LIVE rung {} of {n} (Safe nonce {nonce}), {remaining} left (F fires)",
                    rung + 1
                ),
                Color::Green,
            ),
            L::Waiting { nonce, first } => (
                format!("{pb}: waiting (Safe nonce {nonce}, first rung {first})"),
                Color::Yellow,
            ),
            L::Stale { nonce, last } => (
                format!("{pb}: STALE (Safe nonce {nonce} passed the last rung {last}): re-sign"),
                Color::Red,
            ),
            L::Invalid { rung, reason } => (
                format!("{pb}: INVALID at rung {}: {reason}", rung + 1),
                Color::Red,
            ),
        },
    };
    Line::from(vec![
        Span::styled(format!("{label:<10}"), bold()),
        Span::styled(t(&text), fg(app, color)),
    ])
}

fn kv(app: &App, k: &str, v: Span<'static>) -> Line<'static> {
    let _ = app;
    Line::from(vec![Span::styled(format!("{k:<10}"), bold()), v])
}

/// A hash the person compares with the device: on one line when there is room, else label then hash.
fn hash_lines(
    label: &str,
    h: &alloy::primitives::B256,
    width: u16,
    style: Style,
) -> Vec<Line<'static>> {
    let hex = grouped_hex(h);
    if width as usize >= 16 + hex.len() {
        vec![Line::from(vec![
            Span::styled(format!("  {label:<14}"), bold()),
            Span::styled(hex, style),
        ])]
    } else {
        vec![
            Line::from(Span::styled(format!("  {label}"), bold())),
            Line::from(vec![Span::raw("    "), Span::styled(hex, style)]),
        ]
    }
}

/// One line per chain of a multi-chain manifest: the node's view of it, and where the incident stands.
fn chain_lines(app: &App) -> Vec<Line<'static>> {
    let mut out = vec![Line::from(Span::styled(
        format!(
            "Chains    {} (c: next chain, u: ask the nodes again)",
            app.chains.len()
        ),
        bold(),
    ))];
    for (i, c) in app.chains.iter().enumerate() {
        let active = i == app.chain_idx;
        let name = t(c.manifest.chain_name.as_deref().unwrap_or(""));
        let (bundle, exec) = if active {
            (app.bundle.as_ref(), &app.exec)
        } else {
            (c.bundle.as_ref(), &c.exec)
        };
        let node = match &c.live {
            None if c.rpc.is_none() => Span::styled("no node", fg(app, Color::Yellow)),
            None => Span::raw("asking…"),
            Some(Err(e)) => Span::styled(format!("node DOWN: {}", t(e)), fg(app, Color::Red)),
            Some(Ok(l)) => {
                let paused = l.paused.iter().filter(|(_, p)| *p).count();
                let owners = match l.owners_match {
                    Some(true) => "owners ok",
                    Some(false) => "OWNERS DIFFER",
                    None => "owners ?",
                };
                Span::styled(
                    format!(
                        "block {} · Safe nonce {} · {owners} · paused {paused}/{}",
                        l.block,
                        l.safe_nonce
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| "?".into()),
                        l.paused.len()
                    ),
                    if l.owners_match == Some(false) {
                        fg(app, Color::Red)
                    } else {
                        Style::default()
                    },
                )
            }
        };
        out.push(Line::from(vec![
            Span::styled(
                format!(
                    "{} {name:<12} {:>8}  ",
                    if active { "▶" } else { " " },
                    c.manifest.chain_id
                ),
                if active { bold() } else { Style::default() },
            ),
            node,
        ]));
        out.push(Line::from(format!(
            "                          incident: {}",
            t(&c.stage(bundle, exec))
        )));
    }
    out.push(Line::from(""));
    out
}

fn dashboard(f: &mut Frame, app: &App, area: Rect) {
    let m = &app.manifest;
    let mut lines = vec![
        kv(app, "Protocol", Span::raw(t(&m.name))),
        kv(
            app,
            "Chain",
            Span::raw(if app.chains.is_empty() {
                m.chain_id.to_string()
            } else {
                t(&m.chain_label())
            }),
        ),
        kv(app, "Manifest", Span::raw(m.hash_hex())),
        kv(app, "Trust", trust_span(app)),
    ];
    if let Trust::Untrusted { reason } = &app.trust {
        lines.push(Line::from(Span::styled(
            format!("          {reason}"),
            fg(app, Color::Red),
        )));
    }
    if !app.chains.is_empty() {
        lines.extend(chain_lines(app));
    }
    lines.extend(ladder_lines(app));
    if let Some((lvl, w)) = &app.watch {
        let c = match lvl {
            Level::Ok => Color::Green,
            Level::Info => Color::Reset,
            Level::Error => Color::Red,
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:<10}", "Watch"), bold()),
            Span::styled(t(w), fg(app, c)),
        ]));
    }
    if let Some(s) = &m.safe {
        lines.push(kv(
            app,
            "Safe",
            Span::raw(format!(
                "{} (Safe {})",
                s.address.to_checksum(None),
                s.version.as_str()
            )),
        ));
        lines.push(kv(
            app,
            "Owners",
            Span::raw(format!("{} of {} must sign", s.threshold, s.owners.len())),
        ));
        for o in &s.owners {
            lines.push(Line::from(format!("          {}", o.to_checksum(None))));
        }
    }
    let dev = if let Some(e) = &app.device.error {
        Span::styled(format!("ERROR: {e}"), fg(app, Color::Red))
    } else {
        let blind = match app.device.blind_signing {
            Some(true) => ", blind signing ON",
            Some(false) => ", blind signing OFF (Safe txs need it)",
            None => "",
        };
        Span::raw(format!("{}{blind}", t(&app.device.label)))
    };
    lines.push(kv(app, "Signer", dev));
    for a in &app.device.accounts {
        let owner = if m.safe.as_ref().is_some_and(|s| s.is_owner(&a.address)) {
            " owner"
        } else {
            ""
        };
        lines.push(Line::from(format!(
            "          #{} {}{owner}",
            a.index,
            a.address.to_checksum(None)
        )));
    }
    lines.push(kv(
        app,
        "Node",
        match &app.rpc {
            Some(u) => Span::raw(format!(
                "{u}{}",
                if app.drill {
                    " (DRILL local chain)"
                } else {
                    ""
                }
            )),
            None => Span::raw("offline: compose, review, sign and export only"),
        },
    ));
    lines.push(Line::from(""));
    lines.push(Line::from("Press p to choose a playbook."));
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

fn playbooks(f: &mut Frame, app: &App, area: Rect) {
    let items: Vec<ListItem> = app
        .manifest
        .playbooks
        .iter()
        .map(|p| {
            let via = p
                .actions
                .first()
                .and_then(|a| app.manifest.action(a))
                .map(|a| a.via.as_str())
                .unwrap_or("");
            let mut lines = vec![Line::from(vec![
                Span::styled(format!("{:<14}", t(&p.id)), bold()),
                Span::raw(format!("{} (via {via})", t(&p.title))),
            ])];
            for a in &p.actions {
                let title = app
                    .manifest
                    .action(a)
                    .map(|x| x.title.clone())
                    .unwrap_or_default();
                lines.push(Line::from(format!("      · {}: {}", t(a), t(&title))));
            }
            ListItem::new(lines)
        })
        .collect();
    let mut st = ListState::default();
    st.select(Some(app.playbook_idx));
    let list = List::new(items)
        .highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶ ");
    f.render_stateful_widget(list, area, &mut st);
}

fn review_lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let Some(r) = &app.report else {
        return vec![Line::from(
            "Nothing composed yet: press p, choose a playbook, press Enter.",
        )];
    };
    let style_of = |l: &str| {
        if l.starts_with("  CRITICAL") || l.starts_with("REFUSED") || l.contains("-> REFUSED") {
            fg(app, Color::Red).add_modifier(Modifier::BOLD)
        } else if l.starts_with("ALLOWED") || l.contains("-> ALLOWED") {
            fg(app, Color::Green)
        } else {
            Style::default()
        }
    };
    let text = crate::policy::render_text(r);
    let mut lines = text.lines();
    let mut out = Vec::new();
    // The verdict and its findings first (critical ones at the very top, in red) …
    for l in lines.by_ref() {
        if l.is_empty() {
            break;
        }
        out.push(Line::from(Span::styled(l.to_string(), style_of(l))));
    }
    // … what the simulation says it does (issue 17), one line here and in full after the decode …
    let sim = app.bundle.as_ref().and_then(|b| b.simulation.as_deref());
    match sim {
        Some(s) => out.push(Line::from(Span::styled(
            t(&format!(
                "Simulation (block {}): {}",
                s.block.number,
                s.verdict()
            )),
            if s.allowed() {
                fg(app, Color::Green)
            } else {
                fg(app, Color::Red).add_modifier(Modifier::BOLD)
            },
        ))),
        None => out.push(Line::from("Simulation: not run (no node connected)")),
    }
    out.push(Line::from(""));
    // … then the hashes to compare with the device, large …
    if let Some(h) = r.safe_hashes() {
        out.push(Line::from(Span::styled(
            "Compare with the Ledger screen:",
            bold(),
        )));
        let big = bold().fg(if app.color { Color::Cyan } else { Color::Reset });
        out.extend(hash_lines("Domain hash", &h.domain_separator, width, big));
        out.extend(hash_lines("Message hash", &h.message_hash, width, big));
        out.extend(hash_lines(
            "safeTxHash",
            &h.safe_tx_hash,
            width,
            Style::default(),
        ));
        out.push(Line::from(""));
    }
    // … then the transaction and its call tree (the hashes are not repeated).
    let mut skip = 0;
    for l in lines {
        if l.starts_with("Compare with the Ledger screen") {
            skip = 3;
            continue;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        out.push(Line::from(Span::styled(l.to_string(), style_of(l))));
    }
    if let Some(s) = sim {
        out.push(Line::from(""));
        for l in s.lines() {
            let style = if l.starts_with("  CRITICAL") || l.ends_with("FAILS") {
                fg(app, Color::Red).add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            };
            out.push(Line::from(Span::styled(t(&l), style)));
        }
    }
    out
}

fn review(f: &mut Frame, app: &App, area: Rect) {
    f.render_widget(
        Paragraph::new(review_lines(app, area.width))
            .scroll((app.scroll, 0))
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn sign(f: &mut Frame, app: &App, area: Rect) {
    let mut lines = Vec::new();
    let (have, need) = app.signatures();
    match &app.bundle {
        None => lines.push(Line::from(
            "Nothing to sign yet: compose a playbook first (p).",
        )),
        Some(b) => {
            lines.push(Line::from(vec![
                Span::styled("Signer: ", bold()),
                Span::raw(t(&app.device.label)),
            ]));
            if let Some(busy) = &app.busy {
                lines.push(Line::from(Span::styled(
                    format!("… {busy}"),
                    fg(app, Color::Yellow).add_modifier(Modifier::BOLD),
                )));
            }
            lines.push(Line::from(Span::styled(
                format!("Signatures: {have} of {need}"),
                if have >= need {
                    fg(app, Color::Green)
                } else {
                    fg(app, Color::Yellow)
                },
            )));
            // Each entry as the incident core counts it: an unproven approved-hash entry or a second
            // signature of the same owner is shown, and said not to count.
            let tally = crate::bundle::tally_manifest(&app.manifest, b, &[]);
            for e in &tally.entries {
                if e.state.counts() {
                    lines.push(Line::from(Span::styled(
                        format!("  ✓ {}", e.signer.to_checksum(None)),
                        fg(app, Color::Green),
                    )));
                } else {
                    lines.push(Line::from(Span::styled(
                        format!("  ✗ {} {}", e.signer.to_checksum(None), e.state.explain()),
                        fg(app, Color::Red),
                    )));
                }
            }
            if b.safe_tx.is_some() {
                for o in app.missing_owners() {
                    lines.push(Line::from(format!("  · missing {}", o.to_checksum(None))));
                }
            }
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled("Sign with (↑↓, Enter):", bold())));
        }
    }
    let n = lines.len() as u16;
    let accounts = (app.device.accounts.len() as u16).max(1);
    let chunks = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(n.min(area.height.saturating_sub(2))),
            Constraint::Length(accounts),
            Constraint::Min(0),
        ])
        .split(area);
    f.render_widget(Paragraph::new(lines), chunks[0]);
    if let Some(b) = &app.bundle {
        // What the device will show, from the same library text `breakglass sign` prints; PgDn/PgUp scroll.
        let p = crate::signer::preview::bundle_preview(
            b,
            app.device.full_eip712,
            app.device.blind_signing,
        );
        let mut pl: Vec<Line> = vec![Line::from("")];
        // Hashed mode: the two hashes, grouped for reading, are the review (the pages add nothing).
        let hashed_safe = p.hashes.is_some() && !app.device.full_eip712;
        if let Some(full) = p.full.as_ref().filter(|_| !hashed_safe) {
            pl.push(Line::from(Span::styled(t(&full.heading), bold())));
            for page in &full.pages {
                pl.push(Line::from(format!("  | {}", t(page))));
            }
            for note in &full.notes {
                pl.push(Line::from(t(note)));
            }
        }
        if let Some(h) = &p.hashes {
            let heading = if hashed_safe {
                "The device will show (hashed EIP-712; in capitals, without spaces):".to_string()
            } else {
                h.heading.clone()
            };
            pl.push(Line::from(Span::styled(t(&heading), bold())));
            pl.extend(hash_lines(
                "Domain hash",
                &h.domain,
                chunks[2].width,
                Style::default(),
            ));
            pl.extend(hash_lines(
                "Message hash",
                &h.message,
                chunks[2].width,
                Style::default(),
            ));
        }
        if let Some(tx) = &p.tx {
            pl.push(Line::from(t(tx)));
        }
        pl.push(Line::from(crate::signer::preview::COMPARE));
        f.render_widget(
            Paragraph::new(pl)
                .wrap(Wrap { trim: false })
                .scroll((app.scroll, 0)),
            chunks[2],
        );
    }
    if app.bundle.is_some() {
        let items: Vec<ListItem> = app
            .device
            .accounts
            .iter()
            .map(|a| {
                let signed = app
                    .bundle
                    .as_ref()
                    .is_some_and(|b| b.signatures.iter().any(|s| s.signer == a.address));
                let owner = app
                    .manifest
                    .safe
                    .as_ref()
                    .is_some_and(|s| s.is_owner(&a.address));
                let tag = if signed {
                    "signed"
                } else if owner {
                    "owner"
                } else {
                    "not an owner"
                };
                ListItem::new(format!(
                    "account {}  {}  ({tag})",
                    a.index,
                    a.address.to_checksum(None)
                ))
            })
            .collect();
        let mut st = ListState::default();
        st.select(Some(app.account_idx));
        f.render_stateful_widget(
            List::new(items)
                .highlight_style(Style::default().add_modifier(Modifier::REVERSED))
                .highlight_symbol("▶ "),
            chunks[1],
            &mut st,
        );
    }
}

fn transfer(f: &mut Frame, app: &App, area: Rect) {
    let mut lines = Vec::new();
    match &app.bundle {
        None => {
            lines.push(Line::from(
                "Move the request to an offline signer, or signatures back:",
            ));
            lines.push(Line::from("Nothing composed yet (p)."));
        }
        Some(b) => {
            lines.push(Line::from(format!(
                "Bundle {}, {} signature(s): move it to an offline signer, or signatures back.",
                t(&b.playbook.clone().unwrap_or_default()),
                b.signatures.len()
            )));
            lines.push(Line::from(
                "e: write a file · i: import signatures from files · a/g: QR request/sigs",
            ));
            lines.push(Line::from(
                "Offline: import → verify → sign → export --signatures-only; here: import",
            ));
            if let Some(p) = &app.exported {
                lines.push(Line::from(Span::styled(
                    format!("written: {}", p.display()),
                    fg(app, Color::Green),
                )));
            }
        }
    }
    let n = lines.len() as u16;
    let chunks = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(n), Constraint::Min(1)])
        .split(area);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), chunks[0]);
    if let Some(frame) = app.qr.get(app.qr_idx) {
        let h = frame.lines().count() as u16;
        let w = frame.lines().map(|l| l.chars().count()).max().unwrap_or(0) as u16;
        let caption = format!(
            "{} — frame {} of {} (ur:breakglass-bundle)",
            app.qr_what,
            app.qr_idx + 1,
            app.qr.len()
        );
        if h < chunks[1].height && w <= chunks[1].width {
            let mut text: Vec<Line> = frame.lines().map(|l| Line::from(l.to_string())).collect();
            text.push(Line::from(caption));
            f.render_widget(Paragraph::new(text), chunks[1]);
        } else {
            f.render_widget(
                Paragraph::new(format!(
                    "{caption}\nThe QR needs {w}×{} characters: enlarge the terminal, or run `breakglass export FILE --qr` full screen.",
                    h + 1
                ))
                .wrap(Wrap { trim: false }),
                chunks[1],
            );
        }
    }
}

fn execute(f: &mut Frame, app: &App, area: Rect) {
    let (have, need) = app.signatures();
    let mut lines = vec![
        Line::from(format!(
            "Signatures {have} of {need}; executor: {}",
            app.device
                .accounts
                .first()
                .map(|a| format!("account {} {}", a.index, a.address.to_checksum(None)))
                .unwrap_or_else(|| "none".into())
        )),
        Line::from(format!(
            "Node: {}",
            app.rpc.clone().unwrap_or_else(|| "offline".into())
        )),
        Line::from(""),
    ];
    for l in &app.exec.lines {
        lines.push(Line::from(format!("  {l}")));
    }
    if let Some(r) = &app.exec.receipt {
        lines.push(Line::from(Span::styled(format!("  {r}"), bold())));
    }
    if !app.exec.posts.is_empty() {
        lines.push(Line::from(Span::styled("Post-conditions:", bold())));
        for p in &app.exec.posts {
            let (mark, c) = if p.pass {
                ("PASS", Color::Green)
            } else {
                ("FAIL", Color::Red)
            };
            lines.push(Line::from(Span::styled(
                format!("  {mark}  {}: {}  (now {})", p.action, p.expect, p.actual),
                fg(app, c).add_modifier(Modifier::BOLD),
            )));
        }
    } else if app.bundle.is_some() && have >= need && !app.exec.done && app.busy.is_none() {
        lines.push(Line::from(
            "Ready: press Enter to execute (you will be asked to confirm).",
        ));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

fn log(f: &mut Frame, app: &App, area: Rect) {
    // Newest first: the log opens on what just happened; ↓ goes back in time.
    let lines: Vec<Line> = app
        .log
        .iter()
        .rev()
        .map(|e| {
            let c = match e.level {
                Level::Ok => Color::Green,
                Level::Info => Color::Reset,
                Level::Error => Color::Red,
            };
            Line::from(Span::styled(
                format!("{:>7.1}s  {}", e.at, t(&e.text)),
                fg(app, c),
            ))
        })
        .collect();
    // Clamp the scroll to the last page (the log opens at its newest entries). Wrapped lines make
    // this approximate; long lines scroll a little further.
    let total = lines.len() as u16;
    let max = total.saturating_sub(area.height);
    f.render_widget(
        Paragraph::new(lines)
            .scroll((app.scroll.min(max), 0))
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn confirm(f: &mut Frame, app: &App, c: &Confirm, area: Rect) {
    let text = match c {
        Confirm::Sign(a) => format!(
            "Sign with account {} ({})?\n\nCompare the hashes on the device with the Review screen before approving it there.\n\ny = sign    n / Esc = cancel",
            a.index,
            a.address.to_checksum(None)
        ),
        Confirm::Execute => "Execute now?\n\nThe execution transaction is signed by the executor account and sent to the node.\n\ny = execute    n / Esc = cancel".to_string(),
        Confirm::Quit => "Work is still running. Quit anyway?\n\ny = quit    n / Esc = stay".to_string(),
    };
    let r = centered(area, 64, 9);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Confirm ")
                .style(fg(app, Color::Yellow)),
        ),
        r,
    );
}

fn help(f: &mut Frame, app: &App, area: Rect) {
    let text = [
        "d Dashboard  p Playbooks  r Review  s Sign  t Transfer  x Execute  l Log",
        "",
        "Playbooks: ↑↓ choose, Enter composes and verifies the transaction.",
        "Review: the verdict and critical findings first, in red; the Domain",
        "  and Message hashes the Ledger will show; the decoded calls.",
        "Sign: ↑↓ choose an account, Enter, then y. Approve on the device only",
        "  if its hashes match the Review screen.",
        "Execute: Enter, then y: simulate, sign the execution, send, check.",
        "Transfer: e file, i import signatures from files, a/g QR request/sigs.",
        "Esc cancels a dialog or the running step. q quits. ? closes this help.",
    ]
    .join("\n");
    let r = centered(area, 76, 14);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Help ")
                .style(fg(app, Color::Reset)),
        ),
        r,
    );
}
