package stub;

import java.lang.instrument.Instrumentation;

/** An agent whose premain throws, as a broken tracer would. */
public final class FailingAgent {
    private FailingAgent() {}

    public static void premain(String arguments, Instrumentation instrumentation) {
        throw new IllegalStateException("the stub agent fails on purpose");
    }
}
