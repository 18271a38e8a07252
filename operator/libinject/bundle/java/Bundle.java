package dev.libinject.launcher;

/** What bundle.txt says that the launcher checks or names (agent-sha256 is a build-time fact). */
final class Bundle {
    final String flavor;
    final String version;
    final String agent;
    final long agentSize;
    final int javaMin;

    Bundle(String flavor, String version, String agent, long agentSize, int javaMin) {
        this.flavor = flavor;
        this.version = version;
        this.agent = agent;
        this.agentSize = agentSize;
        this.javaMin = javaMin;
    }

    /** "ddtrace 1.56.0", as the debug lines name a library. */
    String title() {
        return flavor + " " + version;
    }
}
