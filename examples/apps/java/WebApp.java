package dev.libinject.examples;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;

/**
 * A plain Jetty 12 server on 127.0.0.1:$PORT. "/" answers a greeting; "/facts" names the
 * tracer of each agent running in this JVM (what the trace tests check besides the spans).
 */
public final class WebApp extends Handler.Abstract {
    public static void main(String[] args) throws Exception {
        Server server = new Server();
        ServerConnector connector = new ServerConnector(server);
        connector.setHost("127.0.0.1");
        connector.setPort(Integer.parseInt(System.getenv().getOrDefault("PORT", "8080")));
        server.addConnector(connector);
        server.setHandler(new WebApp());
        server.start();
        System.out.println("listening on " + connector.getPort());
        server.join();
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        String path = Request.getPathInContext(request);
        String body = "/facts".equals(path) ? facts() : "hello from the app\n";
        response.getHeaders().put("Content-Type", "text/plain; charset=utf-8");
        response.write(true, ByteBuffer.wrap(body.getBytes(StandardCharsets.UTF_8)), callback);
        return true;
    }

    /** One line per agent whose global tracer this JVM has: "tracer <flavor> <class>". */
    private static String facts() {
        StringBuilder lines = new StringBuilder();
        lines.append(tracer("ddtrace", "datadog.trace.api.GlobalTracer", "get"));
        lines.append(tracer("opentelemetry",
                "io.opentelemetry.javaagent.shaded.io.opentelemetry.api.GlobalOpenTelemetry",
                "getTracerProvider"));
        return lines.toString();
    }

    private static String tracer(String flavor, String className, String getter) {
        try {
            Object found = Class.forName(className).getMethod(getter).invoke(null);
            return "tracer " + flavor + " " + found.getClass().getName() + "\n";
        } catch (ReflectiveOperationException absent) {
            return ""; // that agent is not in this JVM
        }
    }
}
