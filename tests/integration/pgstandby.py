"""PostgreSQL streaming standbys of a test's cluster (adwtest.PgCluster), for the read replica
tests.

Standby(primary).start() lets loopback replication connections into the primary (one pg_hba
line, reloaded; wal_level is `replica` by default and is checked), copies it with
`pg_basebackup -R -X stream`, and starts the copy as a hot standby on a free 127.0.0.1 port, as
the postgres user, like any PgCluster. destroy() (also at exit) stops it and removes its
directory. Nothing here waits without a bound.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import adwtest

REPLICATION_HBA = "host replication all 127.0.0.1/32 trust\n"


def allow_replication(primary):
    """Lets replication connections from 127.0.0.1 into primary (a running PgCluster)."""
    hba = primary.datadir / "pg_hba.conf"
    text = hba.read_text()
    if REPLICATION_HBA not in text:
        primary._write_as_pg(hba, text + REPLICATION_HBA)
        primary.query("SELECT pg_reload_conf()", dbname="postgres")
    level = primary.scalar("SHOW wal_level", dbname="postgres")
    if level not in ("replica", "logical"):
        raise adwtest.PgError(f"wal_level is {level}: no streaming standby possible")


class Standby(adwtest.PgCluster):
    """A hot standby of primary (a running PgCluster), streaming from it on loopback. Its url
    and dsn() name the same database as the primary's."""

    def __init__(self, primary, timeout=60.0):
        super().__init__(dbname=primary.dbname, timeout=timeout)
        self.primary = primary

    def _init(self):
        # PgCluster._init, with pg_basebackup in place of initdb.
        self.base = Path(tempfile.mkdtemp(prefix=adwtest.PG_PREFIX, dir="/tmp"))
        (self.base / "owner.pid").write_text(f"{os.getpid()}\n")
        self.sockdir.mkdir()
        if adwtest._is_root():
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.sockdir, "postgres", "postgres")
        atexit.register(self.destroy)
        allow_replication(self.primary)
        self._run([adwtest.PG_BIN / "pg_basebackup", "-D", self.datadir,
                   "-h", self.primary.host, "-p", self.primary.port, "-U", "postgres",
                   "-R", "-X", "stream", "-c", "fast", "--no-sync"])
        # The copy holds the primary's adw.conf (its port): start() writes this one's.

    def caught_up(self, timeout=30.0):
        """Waits until the standby has replayed everything the primary had written when
        called. Returns self."""
        lsn = self.primary.scalar("SELECT pg_current_wal_lsn()::text", dbname="postgres")
        adwtest.wait_for(
            lambda: self.scalar("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,),
                                dbname="postgres"),
            timeout, interval=0.05, what=f"standby replayed up to {lsn}")
        return self

    def max_id(self):
        """The newest event id the standby shows (0 for none)."""
        return self.scalar("SELECT coalesce(max(id), 0) FROM events")

    def pause(self, timeout=30.0):
        """pg_wal_replay_pause(), waiting until replay has actually stopped."""
        self.query("SELECT pg_wal_replay_pause()", dbname="postgres")
        adwtest.wait_for(
            lambda: self.scalar("SELECT pg_get_wal_replay_pause_state()",
                                dbname="postgres") == "paused",
            timeout, interval=0.05, what="standby replay paused")

    def resume(self):
        """pg_wal_replay_resume()."""
        self.query("SELECT pg_wal_replay_resume()", dbname="postgres")

    def promote(self):
        """pg_promote(), waiting until the server has left recovery."""
        assert self.scalar("SELECT pg_promote(true, 60)", dbname="postgres") is True
        assert self.scalar("SELECT pg_is_in_recovery()", dbname="postgres") is False

    def connections(self, application_name):
        """The number of sessions of application_name on the standby."""
        return self.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                           (application_name,), dbname="postgres")
