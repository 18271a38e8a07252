package stub;

import java.lang.instrument.Instrumentation;

/** An agent that says it started, with what the JVM (or the launcher) gave it. */
public final class StubAgent {
    private StubAgent() {}

    public static void premain(String arguments, Instrumentation instrumentation) {
        boolean system = StubAgent.class.getClassLoader() == ClassLoader.getSystemClassLoader();
        System.out.println("stub agent started: arguments " + arguments
                + ", retransform " + instrumentation.isRetransformClassesSupported()
                + ", redefine " + instrumentation.isRedefineClassesSupported()
                + ", native prefix " + instrumentation.isNativeMethodPrefixSupported()
                + ", system loader " + system);
    }
}
