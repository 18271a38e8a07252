package dev.libinject.launcher;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The launcher's checks without I/O: every fact about the JVM and the bundle is an argument, so
 * a test drives them with any JVM's facts (an old Java, a tool's command) through a probe class.
 * Each check throws Refused with the reason the debug line gives.
 */
final class Decision {
    static final String MANIFEST = "bundle.txt";

    private static final String[] KEYS = {
        "language", "flavor", "version", "agent", "agent-size", "java-min"
    };

    // Since Java 9 the JDK's tools run their main class as module/class from a java.* or jdk.*
    // module; Java 8's (jar, javac, jcmd, keytool, orbd, pack200...) live in these packages.
    private static final String[] JDK_MODULES = {"java.", "jdk."};
    private static final String[] JDK_PACKAGES = {
        "sun.", "jdk.", "com.sun.tools.", "com.sun.corba.se.", "com.sun.java.util.jar.pack.",
        "com.sun.javafx.tools."
    };
    // Maven (its classworlds launcher, wrapper, surefire's forked booter, mvnd) and Gradle (its
    // wrapper, client, daemon and workers): they read JAVA_TOOL_OPTIONS as any JVM does.
    private static final String[] BUILD_PACKAGES = {
        "org.codehaus.plexus.classworlds.", "org.apache.maven.", "org.mvndaemon.mvnd.",
        "org.gradle.", "worker.org.gradle."
    };
    private static final String[] BUILD_JARS = {
        "maven-wrapper", "plexus-classworlds", "gradle-wrapper", "gradle-launcher"
    };

    private static final String[] TRACER_AGENTS = {"dd-java-agent", "opentelemetry-javaagent"};
    private static final String JAVAAGENT = "-javaagent:";
    private static final String AGENTPATH = "-agentpath:";

    private Decision() {}

    /** Check 1: bundle.txt's text (null when the file does not exist) as a complete Bundle. */
    static Bundle bundle(String text, String root) throws Refused {
        if (text == null) {
            throw notReady("no " + MANIFEST + " in " + root);
        }
        Map<String, String> values = keyValues(text);
        List<String> missing = new ArrayList<String>();
        for (String key : KEYS) {
            if (!values.containsKey(key)) {
                missing.add(key);
            }
        }
        if (!missing.isEmpty()) {
            throw notReady(MANIFEST + " lacks " + join(missing));
        }
        String language = values.get("language");
        if (!language.equals("java")) {
            throw notReady(MANIFEST + " is for " + language + ", not java");
        }
        String agent = values.get("agent");
        if (agent.indexOf('/') >= 0 || agent.equals(".") || agent.equals("..")) {
            throw notReady(MANIFEST + " names agent '" + agent + "', not a file name");
        }
        long size = number(values, "agent-size");
        long javaMin = number(values, "java-min");
        if (javaMin > Integer.MAX_VALUE) {
            throw notReady(MANIFEST + " has java-min '" + javaMin + "', not a Java version");
        }
        return new Bundle(values.get("flavor"), values.get("version"), agent, size, (int) javaMin);
    }

    /**
     * Checks 2 to 4: the Java version (java.specification.version), the program
     * (sun.java.command) and an agent the application gives itself (JAVA_TOOL_OPTIONS,
     * JDK_JAVA_OPTIONS, /proc/self/cmdline with its NUL separators; any may be null).
     */
    static void admit(
            Bundle bundle,
            String specVersion,
            String command,
            String toolOptions,
            String jdkOptions,
            String commandLine)
            throws Refused {
        int feature = feature(specVersion);
        if (feature < 0) {
            throw new Refused("unknown Java version '" + specVersion + "'");
        }
        if (feature < bundle.javaMin) {
            throw new Refused("Java " + feature + " is older than " + bundle.title()
                    + " supports (Java " + bundle.javaMin + " or later)");
        }
        checkProgram(command);
        ownAgent(toolOptions, false, "in JAVA_TOOL_OPTIONS");
        if (feature >= 9) { // only the java launcher of Java 9 and later reads JDK_JAVA_OPTIONS
            ownAgent(jdkOptions, false, "in JDK_JAVA_OPTIONS");
        }
        ownAgent(commandLine, true, "on the command line");
    }

    /**
     * Check 5: the agent jar as found, its size (-1 when absent) and, when it could be opened,
     * its manifest's Premain-Class (null when none) or the error that opening it gave.
     */
    static void agent(Bundle bundle, long size, String premainClass, String jarError)
            throws Refused {
        if (size < 0) {
            throw incomplete(bundle.agent + " is missing");
        }
        if (size != bundle.agentSize) {
            throw incomplete(bundle.agent + " has " + size + " bytes, " + MANIFEST + " says "
                    + bundle.agentSize);
        }
        if (jarError != null) {
            throw incomplete(bundle.agent + " is not a readable jar (" + jarError + ")");
        }
        if (premainClass == null || premainClass.trim().isEmpty()) {
            throw incomplete(bundle.agent + " has no Premain-Class");
        }
    }

    /** The feature version of java.specification.version: "1.8" is 8, "17" is 17; -1 if none. */
    static int feature(String specVersion) {
        if (specVersion == null) {
            return -1;
        }
        String version = specVersion.startsWith("1.") ? specVersion.substring(2) : specVersion;
        int digits = 0;
        while (digits < version.length() && digits < 9
                && Character.isDigit(version.charAt(digits))) {
            digits++;
        }
        return digits == 0 ? -1 : Integer.parseInt(version.substring(0, digits));
    }

    private static void checkProgram(String command) throws Refused {
        String main = command == null ? "" : command.trim();
        int space = main.indexOf(' ');
        if (space >= 0) {
            main = main.substring(0, space); // the arguments follow
        }
        if (main.isEmpty()) {
            throw new Refused("no main class (a JVM created through JNI, or java -version)");
        }
        if (main.endsWith(".jar")) {
            String jar = main.substring(main.lastIndexOf('/') + 1);
            if (startsWithAny(jar, BUILD_JARS)) {
                throw new Refused("a build tool, not an application: " + main);
            }
            return;
        }
        int slash = main.indexOf('/');
        String className = main.substring(slash + 1);
        boolean jdkModule = slash >= 0 && startsWithAny(main.substring(0, slash), JDK_MODULES);
        if (jdkModule || startsWithAny(className, JDK_PACKAGES)) {
            throw new Refused("a JDK tool, not an application: " + main);
        }
        if (startsWithAny(className, BUILD_PACKAGES)) {
            throw new Refused("a build tool, not an application: " + main);
        }
    }

    private static void ownAgent(String options, boolean byNul, String where) throws Refused {
        for (String word : words(options, byNul)) {
            String option = unquoted(word);
            if (isTracerAgent(option)) {
                throw new Refused("the application starts its own agent: " + option + " " + where);
            }
        }
    }

    /** -javaagent:PATH[=ARGS] naming a tracer's jar, or -agentpath:PATH[=ARGS] a tracer's. */
    private static boolean isTracerAgent(String option) {
        boolean javaagent = option.startsWith(JAVAAGENT);
        if (!javaagent && !option.startsWith(AGENTPATH)) {
            return false;
        }
        String path = option.substring(javaagent ? JAVAAGENT.length() : AGENTPATH.length());
        int equals = path.indexOf('=');
        if (equals >= 0) {
            path = path.substring(0, equals);
        }
        String name = path.substring(path.lastIndexOf('/') + 1).toLowerCase(Locale.ROOT);
        return startsWithAny(name, TRACER_AGENTS) && (!javaagent || name.endsWith(".jar"));
    }

    /**
     * The words of `text` split at NULs (a command line) or at whitespace (an options variable).
     * By hand: String.split with a pattern would load java.util.regex at every JVM start.
     */
    private static List<String> words(String text, boolean byNul) {
        List<String> words = new ArrayList<String>();
        int length = text == null ? 0 : text.length();
        int start = 0;
        for (int at = 0; at <= length; at++) {
            if (at == length || separates(text.charAt(at), byNul)) {
                if (at > start) {
                    words.add(text.substring(start, at));
                }
                start = at + 1;
            }
        }
        return words;
    }

    private static boolean separates(char c, boolean byNul) {
        return byNul ? c == '\0' : Character.isWhitespace(c);
    }

    private static String unquoted(String word) {
        String text = word.trim();
        if (text.length() >= 2 && (text.charAt(0) == '"' || text.charAt(0) == '\'')
                && text.charAt(text.length() - 1) == text.charAt(0)) {
            return text.substring(1, text.length() - 1);
        }
        return text;
    }

    /** `key value` lines; blank lines and # comments are skipped, a later key wins. */
    private static Map<String, String> keyValues(String text) {
        Map<String, String> values = new HashMap<String, String>();
        for (String raw : text.split("\n")) {
            String line = raw.trim();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            List<String> pair = words(line, false);
            if (pair.size() >= 2) {
                values.put(pair.get(0), line.substring(pair.get(0).length()).trim());
            }
        }
        return values;
    }

    private static long number(Map<String, String> values, String key) throws Refused {
        String text = values.get(key);
        try {
            long value = Long.parseLong(text);
            if (value >= 0) {
                return value;
            }
        } catch (NumberFormatException notNumber) {
            // refused below, with the text
        }
        throw notReady(MANIFEST + " has " + key + " '" + text + "', not a number");
    }

    private static boolean startsWithAny(String text, String[] prefixes) {
        for (String prefix : prefixes) {
            if (text.startsWith(prefix)) {
                return true;
            }
        }
        return false;
    }

    private static String join(List<String> words) {
        StringBuilder joined = new StringBuilder();
        for (String word : words) {
            joined.append(joined.length() == 0 ? "" : ", ").append(word);
        }
        return joined.toString();
    }

    private static Refused notReady(String what) {
        return new Refused("library not ready: " + what);
    }

    private static Refused incomplete(String what) {
        return new Refused("library incomplete: " + what);
    }
}
