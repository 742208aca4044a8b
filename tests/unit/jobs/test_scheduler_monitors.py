"""The scheduler runs monitors only for models with enabled alert rules, and with none it imports nothing
of the monitoring stack (scipy, scikit-learn's metrics): an idle server stays small."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from liveml import Registry, Settings

SCRIPT = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timezone
    from pathlib import Path
    from liveml import Settings
    from liveml.jobs.scheduler import Scheduler

    scheduler = Scheduler(Settings(home=Path(sys.argv[1]), user="tester", monitor_interval_s=1))
    scheduler._monitor(datetime.now(timezone.utc))
    scheduler._monitoring.join(30)
    print("monitor-imported" if "liveml.monitoring.monitor" in sys.modules else "monitor-not-imported")
    """
)


def _tick(home: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(home)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_no_alert_rule_no_monitoring_imports_then_a_rule_runs_the_monitors(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    registry = Registry.init(Settings(home=tmp_path, user="tester"))
    registry.push("iris", model_files["logistic"], aliases=["production"], reference=model_files["reference"])
    assert _tick(tmp_path) == "monitor-not-imported"

    from liveml.monitoring.alerts import AlertStore

    AlertStore(registry).add("iris", metric="drift_share", above=0.5)
    registry.close()
    assert _tick(tmp_path) == "monitor-imported"
