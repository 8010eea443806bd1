"""``wms-relay dead list|show|retry|discard``: the dead letters — deliveries wms-relay will not send on its
own.  Each letter is one destination's delivery of one event; retrying it sends to that destination only.

    dead list [--destination D] [--operation OP] [--since 2h|2024-05-01] [--grep TEXT] [--limit N | --all]
              [--json]
    dead show ID [--destination D] [--json]
    dead retry ID... | --all [--destination D] [--operation OP] [--since ...] [--grep TEXT]  [--dry-run]
               [--reason TEXT]
    dead discard ID... | --all [--destination D] [--operation OP] [--since ...] [--grep TEXT]  [--dry-run]
                 --reason TEXT
    dead purge --closed [--older-than 90d|2024-05-01] [--dry-run]

ID is a letter id (``dl-12``), ``OPERATION:KEY`` (the newest letter of that event's delivery to
``--destination``, Trademax by default) or ``DESTINATION/OPERATION:KEY`` (``kaching/stock.adjust:E-1``).
Retrying is atomic: when two people retry one letter, it is sent once.  An invalid event is validated
again first; if it is still invalid it stays a dead letter.  Who did it (``--actor``, default: your OS
account), when and why are kept; ``wms-relay event OPERATION KEY`` shows them.  Letters already retried
or discarded are deleted DEAD_LETTER_RETENTION_DAYS (default 90) after they were closed — by the
scheduler, or now with ``dead purge``; an open letter is never deleted.

``dead list`` shows the newest 50 (``--limit N`` another number, ``--all`` every one) and says how many
more match; its ``--json`` carries the same page with ``total``, ``limit`` and ``more``."""
from __future__ import annotations

import argparse
import json

from worker.commands.presenting import (
    Page, add_destination_option, add_page_options, age, complain, default_actor, described,
    destination_title, friendly_errors, more_line, page_limit, parse_since, print_json, print_listing,
    run_actions, say, say_store, shorten, table,
)
from worker.encoding import one_line
from worker.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dead", help="list, show, retry or discard dead letters", **described(__doc__))
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="dead_command", metavar="ACTION")

    ls = sub.add_parser("list", help="open dead letters, newest first")
    _filters(ls)
    ls.add_argument("--include-closed", action="store_true", help="also letters already retried or discarded")
    add_page_options(ls, "letters")
    ls.add_argument("--json", action="store_true",
                    help="print one JSON object: store, count, dead_letters (an array: the page), total, "
                         "limit, more")
    ls.set_defaults(handler=run_list)

    show = sub.add_parser("show", help="one dead letter in full: the event, every attempt, the errors")
    show.add_argument("id", help="dl-N, OPERATION:KEY or DESTINATION/OPERATION:KEY")
    add_destination_option(show, "with OPERATION:KEY: that destination's letter")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(handler=run_show)

    retry = sub.add_parser("retry", help="send dead letters again (atomic: each is sent once)")
    retry.add_argument("ids", nargs="*", metavar="ID",
                       help="dl-N, OPERATION:KEY or DESTINATION/OPERATION:KEY")
    retry.add_argument("--all", action="store_true", help="every open letter that matches the filters")
    _filters(retry)
    retry.add_argument("--dry-run", action="store_true", help="show what would be retried; change nothing")
    retry.add_argument("--reason", default="", help="why (kept with the letter and in the event's history)")
    retry.add_argument("--actor", default=None, help="who is acting (default: your OS account)")
    retry.add_argument("--json", action="store_true", help="print the results as JSON")
    retry.set_defaults(handler=run_retry)

    discard = sub.add_parser("discard", help="give up on dead letters (kept for the record, never sent)")
    discard.add_argument("ids", nargs="*", metavar="ID",
                         help="dl-N, OPERATION:KEY or DESTINATION/OPERATION:KEY")
    discard.add_argument("--all", action="store_true", help="every open letter that matches the filters")
    _filters(discard)
    discard.add_argument("--dry-run", action="store_true",
                         help="show what would be discarded; change nothing")
    discard.add_argument("--reason", required=True, help="why (required; kept with the letter)")
    discard.add_argument("--actor", default=None, help="who is acting (default: your OS account)")
    discard.add_argument("--json", action="store_true", help="print the results as JSON")
    discard.set_defaults(handler=run_discard)

    purge = sub.add_parser("purge", help="delete closed letters (retried or discarded) older than a time")
    purge.add_argument("--closed", action="store_true", required=True,
                       help="required: only letters already retried or discarded (never open ones)")
    purge.add_argument("--older-than", default=None,
                       help="closed before: 90d, 12w, or a date (default: DEAD_LETTER_RETENTION_DAYS days)")
    purge.add_argument("--dry-run", action="store_true", help="show what would be deleted; change nothing")
    purge.add_argument("--json", action="store_true", help="print the result as JSON")
    purge.set_defaults(handler=run_purge)


def _filters(p: argparse.ArgumentParser) -> None:
    add_destination_option(p, "only letters of this destination (with IDs OPERATION:KEY: its letter)")
    p.add_argument("--operation", help="only this operation, e.g. stock.adjust")
    p.add_argument("--since", help="only letters written since: 30m, 2h, 3d or a date (2024-05-01)")
    p.add_argument("--grep", help="only letters whose event, key or errors contain this text (any case)")


def _query(place, args: argparse.Namespace, *, include_closed: bool = False):
    from worker.store.dead_letter_search import LetterQuery

    since = parse_since(args.since, place.relay.clock()) if args.since else None
    return LetterQuery(operation=args.operation, destination=args.destination, since=since, text=args.grep,
                       status="any" if include_closed else "open")


def _selected_ids(place, args: argparse.Namespace) -> list[str]:
    """The ids of every open letter the filters match, newest first (``--all`` of retry and discard)."""
    from worker.store.dead_letter_search import all_matching_ids

    return all_matching_ids(place.relay.dead_letters, _query(place, args))


def _page(place, args: argparse.Namespace) -> Page:
    """The page ``dead list`` shows, found on the server (issue 21: a page of 100,000 letters reads only
    its own).  Counted in full unless ``--grep`` searches text (that count would read every letter: one
    letter more than the page says whether others match)."""
    from worker.store.dead_letter_search import search

    limit = page_limit(args)
    counted = not args.grep
    found = search(place.relay.dead_letters, _query(place, args, include_closed=args.include_closed),
                   limit=None if limit is None else limit + (0 if counted else 1), count=counted)
    shown = found.letters if limit is None else found.letters[:limit]
    total = found.total if counted else None
    more = (total if total is not None else len(found.letters)) > len(shown)
    return Page(shown, total, limit, more)


@friendly_errors
def run_list(args: argparse.Namespace) -> int:
    from worker.support.workplace import workplace

    page_limit(args)  # a bad --limit is refused before anything is read
    with workplace(Settings.from_env()) as place:
        page = _page(place, args)
        now = place.relay.clock()
    letters = page.items
    if args.json:
        print_listing(place.store, "dead_letters", [letter.to_dict() for letter in letters], page)
        return 0
    say_store(place.store)
    if not letters:
        say("No dead letters" + (" match those filters." if args.operation or args.since or args.grep
                                 or args.destination else ". Nothing needs a person."))
        return 0
    rows = [(letter.letter_id, age(letter.age(now)), letter.destination, letter.operation, letter.key,
             letter.reason, letter.status, letter.detail or json.dumps(letter.messages, ensure_ascii=False))
            for letter in letters]
    say(table(["ID", "AGE", "DESTINATION", "OPERATION", "KEY", "REASON", "STATUS", "WHAT WENT WRONG"], rows,
              widths={4: 32, 7: 70}))
    shown = f"{len(letters)} dead letter{'s' if len(letters) != 1 else ''}"
    if page.more:
        shown += (f" of {page.total:,}" if page.total is not None else "") + " shown (the newest)"
    say(f"{shown}. Next: `wms-relay dead show ID` to read one; `dead retry ID` once the cause is fixed; "
        "`dead discard ID --reason ...` to give up on it.")
    if page.more:
        say(more_line(page))
    return 0


@friendly_errors
def run_show(args: argparse.Namespace) -> int:
    from worker.support.workplace import workplace
    from worker.support.actions import find_letter

    with workplace(Settings.from_env()) as place:
        letter = find_letter(place.tools, args.id, args.destination)
        record = (place.relay.ledger_of(letter.destination).get(letter.operation, letter.key)
                  if letter else None)
        now = place.relay.clock()
    if letter is None:
        complain(f"no dead letter {args.id}. `wms-relay dead list` shows the open ones.")
        return 1
    view = letter.to_dict()
    view["ledger_state"] = record.state if record else None
    view["store"] = place.store
    if args.json:
        print_json(view)
        return 0
    say_store(place.store)
    say(f"Dead letter {letter.letter_id}: {letter.operation} {one_line(letter.key)} to "
        f"{destination_title(letter.destination)}")
    say(f"  written:  {view['created_at']} ({age(letter.age(now))} ago)")
    closed = f" by {letter.closed_by} at {view['closed_at']}: {letter.close_reason}"
    say(f"  status:   {letter.status}" + (closed if letter.status != "open" else ""))
    say(f"  reason:   {letter.reason}" + (f" — {letter.detail}" if letter.detail else ""))
    say(f"  ledger:   {record.state if record else 'not in the ledger (never accepted)'}")
    say("  errors:")
    messages = letter.messages
    items = ([f"{field}: {'; '.join(map(str, problems))}" for field, problems in messages.items()]
             if isinstance(messages, dict) else [str(m) for m in messages or []])
    for item in items or ["(none recorded)"]:
        say(f"    - {shorten(item, 300)}")
    if view["attempts"]:
        say("  attempts:")
        for a in view["attempts"]:
            said = f"  {shorten('; '.join(map(str, a['messages'])), 120)}" if a.get("messages") else ""
            say(f"    {a['at']}  #{a['attempt']} {a['outcome']}  HTTP {a['status']}  "
                f"error_code {a['error_code']}{said}")
    say("  event:")
    for line in json.dumps(letter.event, indent=2, ensure_ascii=False).splitlines():
        say(f"    {line}")
    if letter.status == "open":
        from worker.support.event_view import letter_next_step

        say(f"Next: {letter_next_step(letter.letter_id, letter.reason)}.")
    return 0


def _refused_selection(args: argparse.Namespace, verb: str) -> bool:
    """IDs or ``--all`` (with filters), not both, not neither: said in a sentence (True: refused)."""
    if bool(args.ids) == bool(args.all):
        complain(f"name the dead letters to {verb} (dl-N or [DESTINATION/]OPERATION:KEY), or use --all (with "
                 "filters).")
        return True
    if args.ids and (args.operation or args.since or args.grep):
        complain(f"--operation, --since and --grep go with --all; with IDs, name exactly what to {verb}.")
        return True
    return False


def _act_on_selection(args: argparse.Namespace, past: str, action) -> int:
    """Run ``action(tools, target, actor)`` on each letter named or selected (``--all`` with filters)."""
    from worker.support.workplace import workplace

    actor = args.actor or default_actor()
    with workplace(Settings.from_env()) as place:
        targets = args.ids or _selected_ids(place, args)
        return run_actions(targets, lambda t: action(place.tools, t, actor), verb=past, as_json=args.json,
                           store=place.store, dry_run=args.dry_run,
                           nothing="Nothing to do: no open dead letters match.")


@friendly_errors
def run_retry(args: argparse.Namespace) -> int:
    from worker.support.actions import retry_letter

    if _refused_selection(args, "retry"):
        return 2
    return _act_on_selection(args, "retried", lambda tools, t, actor: retry_letter(
        tools, t, actor=actor, reason=args.reason, dry_run=args.dry_run, destination=args.destination))


@friendly_errors
def run_discard(args: argparse.Namespace) -> int:
    from worker.support.actions import discard_letter

    if _refused_selection(args, "discard"):
        return 2
    if not args.reason.strip():
        complain("--reason must say why the letter is given up.")
        return 2
    return _act_on_selection(args, "discarded", lambda tools, t, actor: discard_letter(
        tools, t, actor=actor, reason=args.reason, destination=args.destination, dry_run=args.dry_run))


@friendly_errors
def run_purge(args: argparse.Namespace) -> int:
    from worker.encoding import iso_time
    from worker.support.workplace import workplace

    settings = Settings.from_env()
    with workplace(settings) as place:
        now = place.relay.clock()
        if args.older_than:
            cutoff = parse_since(args.older_than, now, "--older-than")
        elif settings.dead_letter_retention_days > 0:
            cutoff = now - settings.dead_letter_retention_days * 86400.0
        else:
            complain("DEAD_LETTER_RETENTION_DAYS is 0 (keep closed letters forever): say --older-than.")
            return 2
        letters = place.relay.dead_letters.purge_closed(cutoff, dry_run=args.dry_run)
    ids = [letter.letter_id for letter in letters]
    if args.json:
        print_json({"store": place.store, "closed_before": iso_time(cutoff), "dry_run": args.dry_run,
                    "deleted" if not args.dry_run else "would_delete": ids})
        return 0
    say_store(place.store)
    verb = "Would delete" if args.dry_run else "Deleted"
    say(f"{verb} {len(ids)} closed dead letter{'s' if len(ids) != 1 else ''} (closed before "
        f"{iso_time(cutoff)})" + (f": {', '.join(ids)}" if ids else "") + ". Open letters are never deleted."
        + (" Dry run: nothing was changed." if args.dry_run else ""))
    return 0
