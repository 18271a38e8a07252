/**
 * The application of the launcher's tests: says that its main ran, then names the global
 * tracer of each tracer agent running in its JVM (none when no agent started).
 */
public class Hello {
    public static void main(String[] args) throws Exception {
        System.out.println("hello from the application");
        // Each agent's own global, reached through the classes it puts on the boot class path:
        // dd-java-agent's tracer, and the tracer provider the OpenTelemetry agent's SDK set.
        report("ddtrace", "datadog.trace.api.GlobalTracer", "get");
        report(
                "opentelemetry",
                "io.opentelemetry.javaagent.shaded.io.opentelemetry.api.GlobalOpenTelemetry",
                "getTracerProvider");
    }

    private static void report(String flavor, String className, String getter) throws Exception {
        Class<?> global;
        try {
            global = Class.forName(className);
        } catch (ClassNotFoundException absent) {
            return; // that agent is not in this JVM
        }
        Object tracer = global.getMethod(getter).invoke(null);
        System.out.println("tracer " + flavor + " " + tracer.getClass().getName());
    }
}
