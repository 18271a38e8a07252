package stub;

/** An agent with only the older premain(String) entry. */
public final class OneArgumentAgent {
    private OneArgumentAgent() {}

    public static void premain(String arguments) {
        System.out.println("stub agent started without instrumentation: arguments " + arguments);
    }
}
