package dev.libinject.launcher;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.instrument.Instrumentation;
import java.lang.reflect.InvocationTargetException;
import java.nio.charset.Charset;
import java.util.Locale;
import java.util.jar.JarFile;
import java.util.jar.Manifest;

/**
 * libinject's Java agent (-javaagent in JAVA_TOOL_OPTIONS): checks that the tracer may load in
 * this JVM (Decision), then hands over to the real agent in its own directory. It never throws
 * and never exits: the JVM aborts when an agent's premain throws, and the application must start
 * with or without the tracer. LIBINJECT_DEBUG=true prints one stderr line saying what happened.
 */
public final class Launcher {
    private static final Charset UTF8 = Charset.forName("UTF-8");

    // The class is loaded once per JVM even when several -javaagent options name a launcher
    // (the first jar on the class path serves it), so this tells a second launcher it came late.
    private static boolean ran;

    private Launcher() {}

    /** The JVM's entry: `arguments` is the text after '=' in our -javaagent (or null). */
    public static void premain(String arguments, Instrumentation instrumentation) {
        try {
            debug(start(arguments, instrumentation));
        } catch (Throwable error) {
            debug(notLoaded("launcher error: " + describe(error)));
        }
    }

    private static String start(String arguments, Instrumentation instrumentation)
            throws Exception {
        if (ran) {
            return notLoaded("a libinject launcher already ran in this JVM (one tracer)");
        }
        ran = true;
        File root = ownDirectory();
        Bundle bundle;
        try {
            bundle = Decision.bundle(read(new File(root, Decision.MANIFEST)), root.getPath());
            Decision.admit(
                    bundle,
                    System.getProperty("java.specification.version"),
                    System.getProperty("sun.java.command"),
                    System.getenv("JAVA_TOOL_OPTIONS"),
                    System.getenv("JDK_JAVA_OPTIONS"),
                    commandLine());
        } catch (Refused refused) {
            return notLoaded(refused.getMessage());
        }
        return startAgent(bundle, new File(root, bundle.agent), arguments, instrumentation);
    }

    /**
     * Check 5, then the handover. The jar stays open until the agent's class is loaded: the
     * JDK's zip code shares one parsed central directory among the open handles of a file, so
     * the class loader opening it again need not read the 30 MB jar's directory twice.
     */
    private static String startAgent(
            Bundle bundle, File file, String arguments, Instrumentation instrumentation) {
        long size = file.isFile() ? file.length() : -1;
        JarFile jar = null;
        String premainClass = null;
        String jarError = null;
        try {
            if (size == bundle.agentSize) {
                try {
                    jar = new JarFile(file);
                    premainClass = premainClass(jar);
                } catch (IOException | SecurityException error) {
                    jarError = describe(error);
                }
            }
            Decision.agent(bundle, size, premainClass, jarError);
            String what = bundle.title() + " from " + file.getParent();
            try {
                handOver(jar, premainClass.trim(), arguments, instrumentation);
            } catch (Throwable error) {
                return notLoaded("failed to start " + what + ": " + describe(cause(error)));
            }
            return "loaded " + what;
        } catch (Refused refused) {
            return notLoaded(refused.getMessage());
        } finally {
            close(jar);
        }
    }

    /** What the JVM does with a -javaagent jar: on the class path, then its premain. */
    private static void handOver(
            JarFile jar, String premainClass, String arguments, Instrumentation instrumentation)
            throws Exception {
        instrumentation.appendToSystemClassLoaderSearch(jar);
        Class<?> agent = Class.forName(premainClass, true, ClassLoader.getSystemClassLoader());
        try {
            agent.getMethod("premain", String.class, Instrumentation.class)
                    .invoke(null, arguments, instrumentation);
        } catch (NoSuchMethodException noInstrumentation) {
            agent.getMethod("premain", String.class).invoke(null, arguments);
        }
    }

    private static String premainClass(JarFile jar) throws IOException {
        Manifest manifest = jar.getManifest();
        return manifest == null
                ? null
                : manifest.getMainAttributes().getValue("Premain-Class");
    }

    /** The directory of the launcher's jar, as the JVM opened it. */
    private static File ownDirectory() throws Exception {
        File jar = new File(Launcher.class.getProtectionDomain().getCodeSource()
                .getLocation().toURI());
        return jar.getParentFile();
    }

    /** The file's text, or null when it does not exist. */
    private static String read(File file) throws Refused {
        if (!file.exists()) {
            return null;
        }
        try {
            return new String(bytes(file), UTF8);
        } catch (IOException error) {
            throw new Refused("library not ready: cannot read " + file + " (" + describe(error)
                    + ")");
        }
    }

    /** /proc/self/cmdline: the java launcher's arguments, NUL-separated (null without /proc). */
    private static String commandLine() {
        try {
            return new String(bytes(new File("/proc/self/cmdline")), UTF8);
        } catch (IOException noProc) {
            return null;
        }
    }

    private static byte[] bytes(File file) throws IOException {
        InputStream in = new FileInputStream(file);
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buffer = new byte[8192];
            for (int n = in.read(buffer); n >= 0; n = in.read(buffer)) {
                out.write(buffer, 0, n);
            }
            return out.toByteArray();
        } finally {
            in.close();
        }
    }

    private static void close(JarFile jar) {
        if (jar != null) {
            try {
                jar.close();
            } catch (IOException ignored) {
                // only our handle: the class loader has its own
            }
        }
    }

    private static Throwable cause(Throwable error) {
        Throwable cause = error.getCause();
        return error instanceof InvocationTargetException && cause != null ? cause : error;
    }

    private static String notLoaded(String reason) {
        return "tracer not loaded: " + reason + " (the application runs without it)";
    }

    private static String describe(Throwable error) {
        String message = error.getMessage();
        return error.getClass().getName() + (message == null ? "" : ": " + message);
    }

    /** One stderr line with LIBINJECT_DEBUG; the pid tells apart the JVMs that share a log. */
    private static void debug(String line) {
        try {
            String flag = System.getenv("LIBINJECT_DEBUG");
            String value = flag == null ? "" : flag.trim().toLowerCase(Locale.ROOT);
            if (value.equals("true") || value.equals("1") || value.equals("yes")
                    || value.equals("on")) {
                System.err.println("libinject: " + line + " [pid " + pid() + "]");
            }
        } catch (Throwable ignored) {
            // a debug line is never worth a failed start
        }
    }

    /** Java 8 has no ProcessHandle, and RuntimeMXBean would start JMX before the agent. */
    private static String pid() {
        try {
            return new File("/proc/self").getCanonicalFile().getName();
        } catch (IOException noProc) {
            return "unknown";
        }
    }
}
