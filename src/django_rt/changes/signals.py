"""Publishing the ORM's changes, after commit."""

from __future__ import annotations

from typing import Any

from django.db import models, router
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.db.models.sql.subqueries import DeleteQuery

from ..conf import rt_settings
from ..live import reads
from . import DELETE, SAVE, Change, get_feed, own_model


def _label(model: type[models.Model]) -> str:
    return model._meta.concrete_model._meta.label_lower  # type: ignore[union-attr]


def _publish(changes: list[Change], using: str) -> None:
    """Hand ``changes`` to the feed inside the transaction that made them: the feed
    publishes them once it commits (a database outbox writes them in it)."""
    ignored = set(rt_settings.IGNORE_MODELS)
    changes = [c for c in changes if c.model not in ignored and not own_model(c.model)]
    if changes:
        get_feed().record(changes, using)


def on_save(sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any) -> None:
    if not kwargs.get("raw"):
        _publish([Change(_label(sender), str(instance.pk), SAVE)], using)


def on_delete(
    sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any
) -> None:
    _publish([Change(_label(sender), str(instance.pk), DELETE)], using)


def on_m2m(
    sender: type[models.Model],
    instance: models.Model,
    action: str,
    model: type[models.Model],
    pk_set: set[Any] | None,
    using: str,
    **kwargs: Any,
) -> None:
    if not action.startswith("post_"):
        return
    # Both sides' related managers read through the link table: treat both as saved.
    changes = [Change(_label(type(instance)), str(instance.pk), SAVE)]
    changes += [Change(_label(model), str(pk), SAVE) for pk in pk_set or ()]
    if not pk_set:  # clear(): the other side's rows are unknown, its table changed
        changes.append(Change(_label(model), "", SAVE))
    _publish(changes, using or router.db_for_write(sender))


def on_write(tables: frozenset[str], using: str) -> None:
    """A statement wrote to ``tables`` (``QuerySet.update()``, ``bulk_create()``, raw
    SQL through Django's connection): their rows are unknown, the tables changed."""
    _publish([Change(table, "", SAVE) for table in sorted(tables)], using)


def _announced_row_by_row(save_table: Any) -> Any:
    """``Model._save_table``, whose statement (the row's ``UPDATE`` or ``INSERT``) is
    announced by the save's ``post_save`` (:func:`on_save`): it does not also announce
    its whole table. A parent's table (multi-table inheritance), whose rows post_save
    does not name, and a raw save (``loaddata``), which post_save does not publish,
    still do."""

    def _save_table(self: models.Model, *args: Any, **kwargs: Any) -> Any:
        raw = kwargs.get("raw", args[0] if args else False)
        cls = kwargs.get("cls", args[1] if len(args) > 1 else None) or type(self)
        concrete = type(self)._meta.concrete_model
        if raw or concrete is None or cls._meta.concrete_model is not concrete:
            return save_table(self, *args, **kwargs)
        with reads.covered(frozenset({concrete._meta.label_lower})):
            return save_table(self, *args, **kwargs)

    _save_table.__wrapped__ = save_table  # type: ignore[attr-defined]
    return _save_table


def _deleted_row_by_row(delete_batch: Any) -> Any:
    """``DeleteQuery.delete_batch``, the statement with which a model's ``delete()``
    (Django's deletion collector) removes rows whose ``post_delete`` follows, each
    announcing its row (:func:`on_delete`): it does not also announce the table. The
    rows of an automatic model (a many-to-many link table), which get no post_delete,
    still do."""

    def _delete_batch(self: Any, pk_list: Any, using: str) -> Any:
        model = self.model
        concrete = model._meta.concrete_model
        if model._meta.auto_created or concrete is None or not post_delete.has_listeners(model):
            return delete_batch(self, pk_list, using)
        with reads.covered(frozenset({concrete._meta.label_lower})):
            return delete_batch(self, pk_list, using)

    _delete_batch.__wrapped__ = delete_batch  # type: ignore[attr-defined]
    return _delete_batch


def connect() -> None:
    save_table = models.Model._save_table  # type: ignore[attr-defined]
    if not hasattr(save_table, "__wrapped__"):
        models.Model._save_table = _announced_row_by_row(save_table)  # type: ignore[attr-defined]
    if not hasattr(DeleteQuery.delete_batch, "__wrapped__"):
        DeleteQuery.delete_batch = _deleted_row_by_row(DeleteQuery.delete_batch)  # type: ignore[method-assign]
    reads.on_write(on_write)
    post_save.connect(on_save, dispatch_uid="django_rt.on_save")
    post_delete.connect(on_delete, dispatch_uid="django_rt.on_delete")
    m2m_changed.connect(on_m2m, dispatch_uid="django_rt.on_m2m")
