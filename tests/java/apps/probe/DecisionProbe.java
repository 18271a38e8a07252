package dev.libinject.launcher;

import java.io.BufferedReader;
import java.io.InputStreamReader;

/**
 * Drives the launcher's checks (Decision) with simulated facts: one case per stdin line, its
 * fields tab-separated (spec version, sun.java.command, JAVA_TOOL_OPTIONS, JDK_JAVA_OPTIONS,
 * command line, bundle.txt, agent size, Premain-Class, jar error), "~" for null, with \n, \r, \t,
 * \0 and \\ escaped. Prints one line per case: "admitted FLAVOR VERSION" or "refused REASON".
 */
public final class DecisionProbe {
    private DecisionProbe() {}

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] f = line.split("\t", -1);
            String[] v = new String[f.length];
            for (int i = 0; i < f.length; i++) {
                v[i] = f[i].equals("~") ? null : unescaped(f[i]);
            }
            try {
                Bundle bundle = Decision.bundle(v[5], "/bundle");
                Decision.admit(bundle, v[0], v[1], v[2], v[3], v[4]);
                Decision.agent(bundle, Long.parseLong(v[6]), v[7], v[8]);
                System.out.println("admitted " + bundle.title());
            } catch (Refused refused) {
                System.out.println("refused " + refused.getMessage());
            }
        }
    }

    private static String unescaped(String text) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '\\' && i + 1 < text.length()) {
                char next = text.charAt(++i);
                out.append(escaped(next));
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    private static char escaped(char letter) {
        switch (letter) {
            case 'n':
                return '\n';
            case 'r':
                return '\r';
            case 't':
                return '\t';
            case '0':
                return '\0';
            default:
                return letter;
        }
    }
}
