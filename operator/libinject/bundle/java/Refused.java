package dev.libinject.launcher;

/** The tracer must not be loaded in this JVM; the message says why. */
final class Refused extends Exception {
    private static final long serialVersionUID = 1L;

    Refused(String reason) {
        super(reason);
    }

    /** A stand-down is an answer, not a fault: no stack to record (it is never printed). */
    @Override
    public synchronized Throwable fillInStackTrace() {
        return this;
    }
}
