"""Mapping files (JSON / TOML), the commands' output and their refusals of bad input."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from imports.mapping import MappingError, load_mapping
from imports.report import compare
from tests.import_helpers import SAMPLE, run_import, standard_24x7
from tickets.models import Event, Ticket

pytestmark = pytest.mark.django_db
STD = ("--standard", "Incidents 24x7")

OTHER_TOOL_CSV = """ref;state;at;opened;who;where;prio;team;agent;kind
T-1;Open;2024-03-01 10:00;2024-03-01 09:00;Ann Ash;Sales;High;Helpdesk;Bob Bell;Laptop
T-1;Waiting;2024-03-01 11:00;2024-03-01 09:00;Ann Ash;Sales;High;Helpdesk;Bob Bell;Laptop
T-1;Open;2024-03-01 13:00;2024-03-01 09:00;Ann Ash;Sales;High;Helpdesk;Bob Bell;Laptop
T-1;Done;2024-03-01 14:00;2024-03-01 09:00;Ann Ash;Sales;High;Helpdesk;Bob Bell;Laptop
T-2;Open;2024-03-02 10:00;2024-03-02 09:30;Cy Cole;Legal;Low;Helpdesk;-;-
T-3;Lost;2024-03-02 10:00;2024-03-02 09:30;Cy Cole;Legal;Low;Helpdesk;-;-
"""
OTHER_TOOL_MAPPING = {
    "source": "othertool",
    "delimiter": ";",
    "date_format": "%Y-%m-%d %H:%M",
    "empty_values": ["-", ""],
    "title": "{category}",
    "columns": {
        "ref": "number",
        "state": "state",
        "at": "updated_at",
        "opened": "opened_at",
        "who": "caller",
        "where": "location",
        "prio": "priority",
        "team": "group",
        "agent": "assignee",
        "kind": "category",
    },
    "status": {"Open": "open", "Waiting": "waiting_on_customer", "Done": "resolved"},
    "priority": {"High": "P2", "Low": "P4"},
}


@pytest.fixture
def std(db):
    return standard_24x7()


def test_json_mapping_brings_in_another_tools_export(std, tmp_path):
    export = tmp_path / "export.csv"
    export.write_text(OTHER_TOOL_CSV)
    mapping = tmp_path / "othertool.json"
    mapping.write_text(json.dumps(OTHER_TOOL_MAPPING))

    summary = run_import(export, preset=None, mapping=mapping)

    assert summary.incidents_created == 2
    assert summary.skipped_by_reason() == {"unknown state 'Lost'": [7]}
    laptop = Ticket.objects.get(source_key="othertool:T-1")
    assert (laptop.status, laptop.priority, laptop.title) == ("resolved", "P2", "Laptop")
    assert laptop.supplier_department.name == "Helpdesk"
    assert laptop.customer_department.name == "Sales"
    assert laptop.assignee.username == "othertool-bob-bell"
    # 09:00 → 14:00 with two hours waiting on the caller: three hours count.
    assert laptop.clocks.get(metric="resolution").elapsed.total_seconds() == 3 * 3600
    bare = Ticket.objects.get(source_key="othertool:T-2")
    assert (bare.status, bare.assignee, bare.title) == ("open", None, "Incident T-2")


def test_toml_mapping_laid_over_the_preset_changes_only_what_it_names(std, tmp_path):
    overlay = tmp_path / "overlay.toml"
    overlay.write_text('[priority]\n"3 - Moderate" = "P4"\n')

    run_import(mapping=overlay)

    assert Ticket.objects.get(source_key="servicenow:INC0000045").priority == "P4"
    assert Ticket.objects.get(source_key="servicenow:INC0001549").priority == "P1"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"columns": {"a": "nonsense"}}, "unknown field 'nonsense'"),
        ({"status": {"New": "limbo"}}, "state 'New' must map to one of"),
        ({"priority": {"1 - Critical": "P9"}}, "must map to one of P1, P2, P3, P4"),
        ({"source": "a:b"}, "source must be a short name"),
    ],
)
def test_mapping_mistakes_are_named(tmp_path, content, message):
    overlay = tmp_path / "bad.json"
    overlay.write_text(json.dumps(content))

    with pytest.raises(MappingError, match=message):
        load_mapping(preset="servicenow", path=overlay)


def test_mapping_without_required_columns_is_refused(tmp_path):
    bare = tmp_path / "bare.toml"
    bare.write_text(
        'source = "x"\n[columns]\nid = "number"\n[status]\nOpen = "open"\n[priority]\nHigh = "P1"\n'
    )

    with pytest.raises(MappingError, match="required field 'caller'"):
        load_mapping(path=bare)


def test_unreadable_mapping_file_is_refused(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[columns\n")

    with pytest.raises(MappingError, match="not valid TOML"):
        load_mapping(path=broken)


def _command(*args) -> str:
    out = io.StringIO()
    call_command("import_incidents", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_command_prints_the_summary_with_skipped_lines(std):
    output = _command(str(SAMPLE), "--preset", "servicenow", *STD)

    assert "created                   16" in output
    assert "events created             144" in output
    assert "unknown incident_state '-100': 5 (line 46, 47, 58, 59, 60)" in output
    assert "skipped incident INC0005690 (line 24)" in output
    assert "people created" in output and "departments created" in output


def test_command_compares_with_made_sla(std):
    output = _command(
        str(SAMPLE), "--preset", "servicenow", "--standard", "Incidents 24x7", "--compare"
    )

    assert "Resolution compliance under 'Incidents 24x7' vs the source's made_sla" in output
    assert "all" in output.split("made_sla  agree")[1]


def test_report_command_reads_the_imported_incidents(std):
    run_import()
    out = io.StringIO()

    call_command("incident_sla_report", stdout=out)

    assert "Incidents 24x7" in out.getvalue()
    assert "P3" in out.getvalue()


def test_report_command_without_an_import_says_so(db):
    with pytest.raises(CommandError, match="nothing has been imported"):
        call_command("incident_sla_report", stdout=io.StringIO())


def test_comparison_figures_are_counted_per_priority():
    rows = {
        row.priority: row
        for row in compare(
            [
                ("P1", "met", True),
                ("P1", "breached", True),
                ("P1", "breached", False),
                ("P3", "met", None),
            ]
        )
    }

    assert (rows["P1"].met, rows["P1"].breached) == (1, 2)
    assert rows["P1"].compliance == pytest.approx(1 / 3)
    assert rows["P1"].source_compliance == pytest.approx(2 / 3)
    assert rows["P1"].agreement == pytest.approx(2 / 3)
    assert rows["P3"].source_compliance is None
    assert rows["all"].incidents == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/log.zip", "--preset", "servicenow", *STD], "does not exist"),
        ([str(SAMPLE), "--preset", "servicenow", "--standard", "Nope"], "no published service"),
        ([str(SAMPLE), "--preset", "servicenow", "--timezone", "Mars/Olympus", *STD], "time zone"),
        ([str(SAMPLE)], "give --preset or --mapping"),
    ],
)
def test_command_refuses_bad_input_with_a_message(std, args, message):
    with pytest.raises(CommandError, match=message):
        _command(*args)


def test_file_without_the_mapped_columns_is_refused(std, tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")

    with pytest.raises(CommandError, match="the file has no column"):
        _command(str(other), "--preset", "servicenow", *STD)


def test_binary_file_is_refused_not_crashed_on(std, tmp_path):
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\xff\xfe\x00garbage\x00\x81\n")

    with pytest.raises(CommandError):
        _command(str(junk), "--preset", "servicenow", *STD)
    assert not Event.objects.exists()


def test_lead_option_opens_the_busiest_imported_groups_dashboards(std):
    from departments.models import Department
    from servicedesk import permissions
    from tests import factories

    lead = factories.UserFactory(username="lead")

    output = _command(str(SAMPLE), "--preset", "servicenow", *STD, "--lead", "lead")

    group_70 = Department.objects.get(name="Group 70")  # three imported incidents, the most
    assert permissions.can_view_dashboard(lead, group_70)
    assert "lead leads Group 70" in output
    assert sum(permissions.can_view_dashboard(lead, d) for d in Department.objects.all()) == 5


def test_lead_option_with_an_unknown_account_is_refused(std):
    with pytest.raises(CommandError, match="no account named 'ghost'"):
        _command(str(SAMPLE), "--preset", "servicenow", *STD, "--lead", "ghost")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_shows_rows_per_second_and_time_left():
    from imports.progress import ProgressBar

    terminal = _Terminal()
    bar = ProgressBar(stream=terminal, label="Importing ")

    bar(500, 1000)
    bar(1000, 1000)
    bar.close()

    drawn = terminal.getvalue()
    assert "500/1,000 rows" in drawn and "1,000/1,000 rows" in drawn
    assert "rows/s" in drawn and "ETA " in drawn
    assert drawn.endswith("\n")


def test_progress_bar_stays_silent_when_not_on_a_terminal():
    from imports.progress import ProgressBar

    log = io.StringIO()
    bar = ProgressBar(stream=log)

    bar(10, 10)
    bar.close()

    assert log.getvalue() == ""
