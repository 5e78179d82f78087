"""`threadline kb ...`: ingest, list, search, delete, eval, feedback."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.cli.context import command_runtime, fail
from core.cli.tenant import tenant_from_option
from core.db.session import system_scope, tenant_scope
from core.errors import ThreadlineError
from core.registry import Registry
from core.tenancy.models import Inbox, Tenant

TenantOpt = Annotated[str | None, typer.Option("--tenant", help="tenant slug (required when there are several)")]
InboxOpt = Annotated[
    str | None, typer.Option("--inbox", help="inbox address: scope to this inbox (its tenant is implied)")
]


def resolve_scope(
    factory: sessionmaker[Session], *, tenant: str | None, inbox: str | None
) -> tuple[uuid.UUID, uuid.UUID | None]:
    """(tenant id, inbox id or None) from --tenant / --inbox; exits with a plain message if unknown."""
    with system_scope(factory) as session:
        if inbox:
            row = session.execute(select(Inbox).where(Inbox.address == inbox.strip().lower())).scalar_one_or_none()
            if row is None:
                raise fail(f"no inbox {inbox}")
            t = session.get(Tenant, row.tenant_id)
            if tenant and t is not None and t.slug != tenant:
                raise fail(f"inbox {inbox} does not belong to tenant {tenant}", code=2)
            return row.tenant_id, row.id
    return tenant_from_option(factory, tenant).id, None  # the only tenant, or --tenant when there are several


def register_cli(registry: Registry) -> Any:
    def add(app: typer.Typer) -> None:
        kb = typer.Typer(help="The knowledge base: ingest documents, search them, evaluate retrieval.",
                         no_args_is_help=True)
        app.add_typer(kb, name="kb")
        _add_ingest(kb, registry)
        _add_list_delete(kb, registry)
        _add_search(kb, registry)
        _add_eval_feedback(kb, registry)

    return add


def _knowledge(rt: Any) -> Any:
    from knowledge.service import Knowledge

    return Knowledge.from_settings(rt.settings, rt.factory)


def _add_ingest(kb: typer.Typer, registry: Registry) -> None:
    @kb.command("ingest", help="Ingest Markdown, reStructuredText, HTML and text files or folders. Unchanged "
                "documents are skipped, changed ones replaced.")
    def ingest(
        paths: Annotated[list[Path], typer.Argument(help="files or folders")],
        tenant: TenantOpt = None,
        inbox: InboxOpt = None,
        url_template: Annotated[str | None, typer.Option(
            "--url-template", help="link for each file, e.g. 'https://docs.example.com/{stem}.html' "
            "({path}: relative to the folder, {name}, {stem})")] = None,
        prune: Annotated[bool, typer.Option("--prune", help="also delete stored documents under these folders "
                                            "whose files are gone")] = False,
    ) -> None:
        from tqdm import tqdm

        from knowledge.ingest import Outcome, discover, missing_sources, skipped_files
        from knowledge.ingest import url_template as make_url_for

        files, refused = discover(paths)
        for r in refused:
            typer.secho(f"{r.source}: {r.error}", fg="red", err=True)
        skipped = skipped_files(paths)
        hidden = [f for f, why in skipped if why.startswith("hidden")]
        for f, why in skipped:
            if not why.startswith("hidden"):
                typer.echo(f"skipped {f}: {why}", err=True)
        if hidden:
            typer.echo(f"skipped {len(hidden)} hidden file(s) (names starting with '.', e.g. {hidden[0]})", err=True)
        if not files and refused:
            raise typer.Exit(2)
        roots = [p.resolve() for p in paths if p.is_dir()]
        url_for = make_url_for(url_template, roots[0] if len(roots) == 1 else None) if url_template else None
        with command_runtime(registry) as rt:
            tenant_id, inbox_id = resolve_scope(rt.factory, tenant=tenant, inbox=inbox)
            knowledge = _knowledge(rt)
            bar = tqdm(total=len(files), unit="doc", file=sys.stderr, disable=not sys.stderr.isatty())

            def on_file(result: Any) -> None:
                bar.update(1)
                bar.set_postfix_str(f"{Path(result.source).name}: {result.outcome.value}", refresh=False)
                if result.outcome is Outcome.FAILED:
                    bar.write(f"{result.source}: {result.error}", file=sys.stderr)

            try:
                report = knowledge.ingest(files, tenant_id=tenant_id, inbox_id=inbox_id, url_for=url_for,
                                          on_file=on_file)
            except ThreadlineError as exc:
                raise fail(f"error: {exc}") from None
            finally:
                bar.close()
            if prune and roots:
                with tenant_scope(rt.factory, tenant_id) as session:
                    gone = missing_sources(session=session, tenant_id=tenant_id, under=[r.as_posix() for r in roots])
                report.pruned = knowledge.delete(tenant_id=tenant_id, sources=gone)
        typer.echo(report.summary())
        if report.count(Outcome.FAILED) or refused:
            raise typer.Exit(1)


def _add_list_delete(kb: typer.Typer, registry: Registry) -> None:
    @kb.command("list", help="List the tenant's documents.")
    def list_documents(
        as_json: Annotated[bool, typer.Option("--json", help="one JSON array")] = False,
        tenant: TenantOpt = None,
    ) -> None:
        with command_runtime(registry) as rt:
            tenant_id, _ = resolve_scope(rt.factory, tenant=tenant, inbox=None)
            docs = _knowledge(rt).documents(tenant_id=tenant_id)
        if as_json:
            typer.echo(json.dumps([{**d.__dict__, "id": str(d.id), "inbox_id": d.inbox_id and str(d.inbox_id)}
                                   for d in docs], indent=2))
            return
        for d in docs:
            typer.echo(f"{d.chunks:>5} chunks  {d.updated_at}  {d.title[:40]:<40}  {d.source}")
        typer.echo(f"{len(docs)} document(s), {sum(d.chunks for d in docs)} chunks")

    @kb.command("delete", help="Delete documents by source path (or id), or those whose files are gone.")
    def delete(
        sources: Annotated[list[str] | None, typer.Argument(help="document sources (paths) or ids")] = None,
        missing: Annotated[bool, typer.Option("--missing", help="delete documents whose files are gone")] = False,
        tenant: TenantOpt = None,
    ) -> None:
        from knowledge.ingest import missing_sources

        if not sources and not missing:
            raise fail("name documents to delete, or pass --missing", code=2)
        ids, paths = [], []
        for s in sources or []:
            try:
                ids.append(uuid.UUID(s))
            except ValueError:
                paths.append(Path(s).resolve().as_posix() if not s.startswith(("http://", "https://")) else s)
        with command_runtime(registry) as rt:
            tenant_id, _ = resolve_scope(rt.factory, tenant=tenant, inbox=None)
            if missing:
                with tenant_scope(rt.factory, tenant_id) as session:
                    paths += missing_sources(session=session, tenant_id=tenant_id)
            deleted = _knowledge(rt).delete(tenant_id=tenant_id, sources=paths, ids=ids)
        for s in deleted:
            typer.echo(f"deleted {s}")
        typer.echo(f"{len(deleted)} document(s) deleted")
        if sources and not deleted:
            raise typer.Exit(1)


def _add_search(kb: typer.Typer, registry: Registry) -> None:
    @kb.command("search", help="Hybrid (vector + full-text) search of the tenant's knowledge base.")
    def search(
        question: Annotated[str, typer.Argument(help="the question, in the customer's words")],
        as_json: Annotated[bool, typer.Option("--json", help="one JSON array of hits")] = False,
        top: Annotated[int, typer.Option("--top", min=1, max=100, help="number of passages")] = 5,
        tenant: TenantOpt = None,
        inbox: InboxOpt = None,
    ) -> None:
        with command_runtime(registry) as rt:
            tenant_id, inbox_id = resolve_scope(rt.factory, tenant=tenant, inbox=inbox)
            try:
                hits = _knowledge(rt).search(question, tenant_id=tenant_id, inbox_id=inbox_id, top_k=top)
            except ThreadlineError as exc:
                raise fail(f"error: {exc}") from None
        if as_json:
            typer.echo(json.dumps([h.as_json() for h in hits], indent=2, ensure_ascii=False))
            return
        if not hits:
            typer.echo("no match")
            return
        typer.echo(f"score: rank fusion of vector and full-text search (orders the hits); similarity: how close "
                   f"question and passage are in meaning, 0-1 (a draft needs {rt.settings.kb_min_confidence:.2f})\n")
        for n, h in enumerate(hits, start=1):
            typer.secho(f"{n}. {h.heading or h.title}  (score {h.score:.4f}, similarity {h.similarity:.2f})",
                        bold=True)
            typer.echo(f"   {h.url or h.source}")
            typer.echo("   " + h.text[:400].replace("\n", "\n   ") + ("…" if len(h.text) > 400 else "") + "\n")


def _add_eval_feedback(kb: typer.Typer, registry: Registry) -> None:
    @kb.command("eval", help='Retrieval quality over a JSONL file of {"q": ..., "doc": ...}: hit@1/3/5 and MRR, '
                "beside a BM25 ranking of the same documents.")
    def evaluate_cmd(
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL evaluation set")],
        as_json: Annotated[bool, typer.Option("--json")] = False,
        baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="also rank with BM25")] = True,
        misses: Annotated[bool, typer.Option("--misses", help="list the questions hybrid did not rank first")] = False,
        tenant: TenantOpt = None,
    ) -> None:
        from knowledge.evaluation import load_cases, run_eval

        try:
            cases = load_cases(file)
        except ThreadlineError as exc:
            raise fail(str(exc), code=2) from None
        with command_runtime(registry) as rt:
            tenant_id, _ = resolve_scope(rt.factory, tenant=tenant, inbox=None)
            knowledge = _knowledge(rt)
            results = run_eval(cases, factory=rt.factory, embedder=knowledge.embedder, tenant_id=tenant_id,
                               baseline=baseline)
        if as_json:
            typer.echo(json.dumps([r.as_json() for r in results], indent=2))
            return
        for r in results:
            typer.echo(r.line())
        if misses:
            for q, rank, top in results[0].ranks:
                if rank != 1:
                    typer.echo(f"  rank {rank or '-'}: {q!r} -> {', '.join(Path(s).name for s in top)}")

    @kb.command("feedback", help="Export draft fates (sent/edited/discarded/stale) and KB gaps: questions with "
                "no confident answer.")
    def feedback(
        as_json: Annotated[bool, typer.Option("--json", help="JSON (the default output is a summary)")] = False,
        since: Annotated[datetime | None, typer.Option("--since", help="only drafts created since")] = None,
        tenant: TenantOpt = None,
    ) -> None:
        from knowledge.feedback import export_feedback

        with command_runtime(registry) as rt:
            tenant_id, _ = resolve_scope(rt.factory, tenant=tenant, inbox=None)
            with tenant_scope(rt.factory, tenant_id) as session:
                out = export_feedback(session=session, tenant_id=tenant_id, threshold=rt.settings.kb_min_confidence,
                                      since=since)
        if as_json:
            typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
            return
        typer.echo(f"{len(out['drafts'])} draft(s): " + ", ".join(f"{k} {v}" for k, v in out["summary"].items()))
        for gap in out["gaps"]:
            typer.echo(f"  gap #{gap['ticket_number']} (confidence {gap['confidence']:.2f}): "
                       f"{(gap['question'] or gap['subject'] or '')[:100]}")
