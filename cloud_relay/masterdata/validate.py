"""Every rule a BOM submission must pass before anything is written to Odoo, and the plan of
what will be written (Odoo ids, quantities in each product's own unit).

Each failure is a :class:`Problem` naming the revision, the line or operation and the field.
Quantities are published in the product's own unit, converted with Odoo's factors and
rounding; a conversion Odoo would round is refused with the numbers.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from cloud_relay.masterdata.catalog import Catalog
from cloud_relay.masterdata.units import Unit, UnitBook
from wire.bom import BomRevision, BomSubmission


@dataclass(frozen=True, slots=True)
class Problem:
    """One failed rule: where (a JSON pointer into the submission), what, and why."""

    location: str
    label: str
    message: str

    def __str__(self) -> str:
        return f"{self.label}: {self.message}"


@dataclass(frozen=True, slots=True)
class PlannedLine:
    product_id: int
    code: str
    quantity: float
    uom_id: int
    operation: str | None


@dataclass(frozen=True, slots=True)
class PlannedOperation:
    name: str
    workcenter_id: int
    minutes: float


@dataclass(frozen=True, slots=True)
class PlannedBom:
    """One revision as it will be written to Odoo."""

    revision: BomRevision
    product_id: int
    template_id: int
    quantity: float
    uom_id: int
    bom_type: str
    company_id: int | None
    picking_type_id: int | None
    lines: tuple[PlannedLine, ...]
    operations: tuple[PlannedOperation, ...]


@dataclass(frozen=True, slots=True)
class Validation:
    problems: tuple[Problem, ...]
    plans: tuple[PlannedBom, ...]
    """Bottom-up: every sub-assembly before the revisions that use it."""

    @property
    def ok(self) -> bool:
        return not self.problems


class _Checker:
    def __init__(
        self,
        submission: BomSubmission,
        catalog: Catalog,
        statuses: Collection[str],
        known: Mapping[tuple[str, str], BomRevision],
    ) -> None:
        self.submission = submission
        self.catalog = catalog
        self.statuses = {s.casefold() for s in statuses}
        self.known = known
        self.problems: list[Problem] = []

    def fail(self, location: str, label: str, message: str) -> None:
        self.problems.append(Problem(location, label, message))

    def unit(self, where: str, label: str, name: str, product_unit: Unit) -> Unit | None:
        unit = self.catalog.units.named(name)
        if unit is None:
            self.fail(
                where,
                label,
                f"unit {name!r} does not exist in Odoo "
                f"(units: {', '.join(self.catalog.units.names())})",
            )
            return None
        if not UnitBook.same_kind(unit, product_unit):
            self.fail(
                where,
                label,
                f"unit {unit.name!r} ({unit.kind_name}) is not of the same kind as the product's "
                f"unit {product_unit.name!r} ({product_unit.kind_name})",
            )
            return None
        return unit

    def quantity(
        self, where: str, label: str, quantity: float, unit: Unit, product_unit: Unit
    ) -> float | None:
        conversion = self.catalog.units.convert(quantity, unit, product_unit)
        if not conversion.lossless:
            self.fail(where, label, f"would lose precision: {conversion.describe()}")
            return None
        return conversion.rounded

    def revision(self, index: int, rev: BomRevision) -> PlannedBom | None:
        base = f"/revisions/{index}"
        name = f"{rev.product} rev {rev.revision}"
        before = len(self.problems)
        if rev.status.casefold() not in self.statuses:
            self.fail(
                f"{base}/status",
                f"{name}, status",
                f"{rev.status!r} is not a released status ({', '.join(sorted(self.statuses))})",
            )
        product = self.catalog.products.get(rev.product)
        if product is None:
            self.fail(f"{base}/product", f"{name}, product", f"no product {rev.product!r} in Odoo")
            return None
        product_unit = self.catalog.units.get(product.uom_id)
        if product_unit is None:
            self.fail(f"{base}/product", f"{name}, product", "its unit is not readable in Odoo")
            return None
        unit = self.unit(f"{base}/unit", f"{name}, unit", rev.unit, product_unit)
        quantity = (
            self.quantity(f"{base}/quantity", f"{name}, quantity", rev.quantity, unit, product_unit)
            if unit
            else None
        )
        operations = self.operations(base, name, rev)
        lines = self.lines(base, name, rev, {op.name for op in rev.operations})
        company_id, picking_type_id = self.plant(base, name, rev)
        if len(self.problems) > before or quantity is None:
            return None
        return PlannedBom(
            rev,
            product.id,
            product.template_id,
            quantity,
            product_unit.id,
            "phantom" if rev.type == "kit" else "normal",
            company_id,
            picking_type_id,
            tuple(lines),
            tuple(operations),
        )

    def operations(self, base: str, name: str, rev: BomRevision) -> list[PlannedOperation]:
        planned: list[PlannedOperation] = []
        seen: set[str] = set()
        for k, op in enumerate(rev.operations):
            where, label = f"{base}/operations/{k}", f"{name}, operation {k + 1} ({op.name})"
            if op.name in seen:
                self.fail(f"{where}/name", f"{label}, name", "appears twice in the revision")
            seen.add(op.name)
            workcenter = self.catalog.workcenters.get(op.workcenter)
            if workcenter is None:
                self.fail(
                    f"{where}/workcenter",
                    f"{label}, workcenter",
                    f"no work centre {op.workcenter!r} in Odoo",
                )
                continue
            planned.append(PlannedOperation(op.name, workcenter, op.duration_minutes))
        return planned

    def lines(
        self, base: str, name: str, rev: BomRevision, operations: set[str]
    ) -> list[PlannedLine]:
        planned: list[PlannedLine] = []
        given = {r.key for r in self.submission.revisions}
        for j, line in enumerate(rev.lines):
            where, label = f"{base}/lines/{j}", f"{name}, line {j + 1} ({line.product})"
            if line.product == rev.product:
                self.fail(
                    f"{where}/product", f"{label}, product", "a product cannot contain itself"
                )
                continue
            product = self.catalog.products.get(line.product)
            if product is None:
                self.fail(
                    f"{where}/product", f"{label}, product", f"no product {line.product!r} in Odoo"
                )
                continue
            if line.revision is not None:
                key = (line.product, line.revision)
                if key not in given and key not in self.known:
                    self.fail(
                        f"{where}/revision",
                        f"{label}, revision",
                        f"sub-assembly revision {line.revision!r} of {line.product!r} is neither "
                        "in this submission nor submitted before",
                    )
            if line.operation is not None and line.operation not in operations:
                self.fail(
                    f"{where}/operation",
                    f"{label}, operation",
                    f"no operation {line.operation!r} in this revision",
                )
            product_unit = self.catalog.units.get(product.uom_id)
            if product_unit is None:
                continue
            unit = self.unit(f"{where}/unit", f"{label}, unit", line.unit, product_unit)
            if unit is None:
                continue
            quantity = self.quantity(
                f"{where}/quantity", f"{label}, quantity", line.quantity, unit, product_unit
            )
            if quantity is not None:
                planned.append(
                    PlannedLine(product.id, line.product, quantity, product_unit.id, line.operation)
                )
        return planned

    def plant(self, base: str, name: str, rev: BomRevision) -> tuple[int | None, int | None]:
        company_id: int | None = None
        picking_type_id: int | None = None
        if len(rev.plants) > 1:
            self.fail(
                f"{base}/plants/1",
                f"{name}, plants",
                "one BOM in Odoo serves one plant: submit one revision per plant",
            )
        for p, plant in enumerate(rev.plants[:1]):
            where, label = f"{base}/plants/{p}", f"{name}, plant {p + 1}"
            if plant.company is not None:
                company_id = self.catalog.companies.get(plant.company)
                if company_id is None:
                    self.fail(
                        f"{where}/company", f"{label}, company", f"no company {plant.company!r}"
                    )
            warehouse: int | None = None
            if plant.warehouse is not None:
                warehouse = self.catalog.warehouses.get(plant.warehouse)
                if warehouse is None:
                    self.fail(
                        f"{where}/warehouse",
                        f"{label}, warehouse",
                        f"no warehouse {plant.warehouse!r}",
                    )
                    continue
            types = self.catalog.operation_types
            if plant.operation_type is not None:
                picking_type_id = types.get((warehouse, plant.operation_type)) or next(
                    (
                        v
                        for (w, n), v in types.items()
                        if n == plant.operation_type and not warehouse
                    ),
                    None,
                )
                if picking_type_id is None:
                    self.fail(
                        f"{where}/operation_type",
                        f"{label}, operation_type",
                        f"no manufacturing operation type {plant.operation_type!r}",
                    )
            elif warehouse is not None:
                picking_type_id = next((v for (w, _), v in types.items() if w == warehouse), None)
        return company_id, picking_type_id

    def order(self) -> list[int] | None:
        """Indexes of the revisions bottom-up, or None (and a problem) on a cycle."""
        revisions = self.submission.revisions
        by_product: dict[str, list[int]] = {}
        for i, rev in enumerate(revisions):
            by_product.setdefault(rev.product, []).append(i)
        for product, indexes in by_product.items():
            if len(indexes) > 1:
                self.fail(
                    f"/revisions/{indexes[1]}/product",
                    f"{product}, product",
                    "two revisions of one product in one submission",
                )
                return None
        contents = {rev.product: rev for rev in self.known.values()}
        contents.update({rev.product: rev for rev in revisions})
        done: list[int] = []
        state: dict[str, int] = {}

        def visit(product: str, path: list[str]) -> bool:
            if state.get(product) == 2:
                return True
            if state.get(product) == 1:
                cycle = " -> ".join([*path[path.index(product) :], product])
                self.fail(
                    f"/revisions/{by_product.get(path[0], [0])[0]}", path[0], f"cycle {cycle}"
                )
                return False
            state[product] = 1
            rev = contents.get(product)
            for line in rev.lines if rev else ():
                if line.product == product or line.product not in contents:
                    continue
                if not visit(line.product, [*path, product]):
                    return False
            state[product] = 2
            if product in by_product:
                done.append(by_product[product][0])
            return True

        for rev in revisions:
            if not visit(rev.product, []):
                return None
        return done


def validate(
    submission: BomSubmission,
    catalog: Catalog,
    *,
    released_statuses: Collection[str],
    known: Mapping[tuple[str, str], BomRevision],
) -> Validation:
    """Check every rule; the plans (bottom-up) only when there is no problem at all.

    ``known`` holds the revisions submitted before, for sub-assemblies referenced but not
    given and for cycles through them.
    """
    checker = _Checker(submission, catalog, released_statuses, known)
    order = checker.order()
    plans = [checker.revision(i, rev) for i, rev in enumerate(submission.revisions)]
    if order is None or checker.problems:
        return Validation(tuple(checker.problems), ())
    return Validation((), tuple(p for i in order if (p := plans[i]) is not None))
