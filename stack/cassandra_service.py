"""Apache Cassandra 5.0 (local CQL stand-in for ScyllaDB): jars from Maven Central, our own config, plain `java`."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from string import Template

from clipstream.stack import pins
from clipstream.stack.base import Service, StackError
from clipstream.stack.installers import cassandra_lib_dir, cassandra_resolved, maven_resolve, which

__all__ = ["CassandraService", "JVM17_OPTIONS"]

# From Cassandra 5.0's conf/jvm17-server.options (JPMS section): Cassandra reaches into JDK internals.
JVM17_OPTIONS = [
    "-Djdk.attach.allowAttachSelf=true",
    *[f"--add-exports={m}=ALL-UNNAMED" for m in (
        "java.base/jdk.internal.misc",
        "java.management.rmi/com.sun.jmx.remote.internal.rmi",
        "java.rmi/sun.rmi.registry",
        "java.rmi/sun.rmi.server",
        "java.sql/java.sql",
        "java.base/java.lang.ref",
        "jdk.unsupported/sun.misc",
        "jdk.compiler/com.sun.tools.javac.file",
        "jdk.attach/sun.tools.attach",
    )],
    *[f"--add-opens={m}=ALL-UNNAMED" for m in (
        "java.base/java.lang.module",
        "java.base/jdk.internal.loader",
        "java.base/jdk.internal.ref",
        "java.base/jdk.internal.reflect",
        "java.base/jdk.internal.math",
        "java.base/jdk.internal.module",
        "java.base/jdk.internal.util.jar",
        "jdk.management/com.sun.management.internal",
        "java.base/sun.nio.ch",
        "java.base/java.io",
        "java.base/java.lang.reflect",
        "jdk.compiler/com.sun.tools.javac",
        "java.base/java.lang",
        "java.base/java.util",
    )],
    # Netty settings from the same file.
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
]

# G1 settings of jvm17-server.options and general ones of jvm-server.options; -XX:+AlwaysPreTouch is
# left out on purpose (it faults in the whole heap before anything else: slower start, no gain here).
JVM_GC_OPTIONS = [
    "-XX:+UseG1GC", "-XX:+ParallelRefProcEnabled", "-XX:MaxTenuringThreshold=1", "-XX:G1HeapRegionSize=16m",
    "-XX:G1RSetUpdatingPauseTimePercent=5", "-XX:MaxGCPauseMillis=300", "-XX:InitiatingHeapOccupancyPercent=70",
    "-Xss256k", "-XX:+UseThreadPriorities", "-XX:+HeapDumpOnOutOfMemoryError", "-XX:+ExitOnOutOfMemoryError",
    "-XX:+UseTLAB", "-XX:+ResizeTLAB", "-XX:+PerfDisableSharedMem", "-Djava.net.preferIPv4Stack=true",
]


def _template(name: str, **values: object) -> str:
    text = resources.files("clipstream.stack").joinpath(f"files/{name}").read_text()
    return Template(text).substitute({k: str(v) for k, v in values.items()})


class CassandraService(Service):
    name = "cassandra"
    start_timeout = 110.0
    stop_timeout = 45.0  # SIGTERM drains and flushes; a few seconds usually

    def _storage_port(self) -> int:
        return pins.shifted(pins.CASSANDRA_STORAGE_PORT, self.settings.cql.port, pins.DEFAULT_CQL_PORT)

    def ports(self) -> list[int]:
        return [self.settings.cql.port, self._storage_port()]

    def address(self) -> str:
        return f"{pins.HOST}:{self.settings.cql.port} (CQL)"

    def installed(self) -> bool:
        return cassandra_resolved(self.ctx) and which("java") is not None

    def install(self) -> None:
        if which("java") is None:
            raise StackError("cassandra: java not found (Java 17 is needed: apt-get install -y openjdk-17-jre-headless)")
        maven_resolve(self.ctx)

    def command(self) -> tuple[list[str], dict[str, str]]:
        java = which("java")
        if java is None:
            raise StackError("cassandra: java not found")
        lib = cassandra_lib_dir(self.ctx)
        conf = self.data_dir / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        for sub in ("data", "commitlog", "saved_caches", "hints", "cdc_raw", "triggers"):
            (self.data_dir / sub).mkdir(exist_ok=True)
        yaml = conf / "cassandra.yaml"
        yaml.write_text(_template("cassandra.yaml", data_dir=self.data_dir, host=pins.HOST,
                                  storage_port=self._storage_port(), native_port=self.settings.cql.port))
        logback = conf / "logback.xml"
        logback.write_text(_template("logback.xml", log_file=self.ctx.log_dir / "cassandra-system.log"))
        heap = self.settings.stack.cassandra_heap
        jamm = sorted(lib.glob("jamm-*.jar"))
        argv = [
            java, f"-Xms{heap}", f"-Xmx{heap}", *JVM_GC_OPTIONS, *JVM17_OPTIONS,
            *([f"-javaagent:{jamm[-1]}"] if jamm else []),
            f"-XX:HeapDumpPath={self.data_dir}",
            f"-Dcassandra.config={yaml.as_uri()}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.storagedir={self.data_dir}",
            f"-Dcassandra.logdir={self.ctx.log_dir}",
            f"-Dcassandra.triggers_dir={self.data_dir / 'triggers'}",
            f"-Dlogback.configurationFile={logback}",
            # single local node: do not wait for gossip or a ring that will never have peers
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=100",
            "-Dcassandra.initial_token=0",
            "-cp", f"{lib}/*",
            "org.apache.cassandra.service.CassandraDaemon",
        ]
        return argv, {}

    def check(self) -> str:
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import RoundRobinPolicy

        from clipstream.stack.proc import port_open

        if not port_open(pins.HOST, self.settings.cql.port):
            raise StackError("CQL port not open yet")
        logging.getLogger("cassandra").setLevel(logging.CRITICAL)
        profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=5)
        cluster = Cluster([pins.HOST], port=self.settings.cql.port, connect_timeout=3, control_connection_timeout=3,
                          execution_profiles={EXEC_PROFILE_DEFAULT: profile})
        try:
            session = cluster.connect()
            row = session.execute("SELECT release_version FROM system.local").one()
            return f"CQL release_version {row.release_version}"
        finally:
            cluster.shutdown()

    def wipe_paths(self) -> list[Path]:
        return [self.data_dir]
