// A Java process for the live leak tests (run as `java Workload.java ...`): keeps `--leak`
// MiB/min of byte arrays forever (a heap leak: RSS grows as the JVM commits heap), fills
// a `--warm` MiB cache over `--warm-s` seconds and then keeps it (a warm-up), holds
// `--base` MiB from the start, and makes `--churn` MiB/s of short-lived garbage.
// `--marker` only tags the command line.
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

public class Workload {
    static final int MIB = 1 << 20;
    static final int CHUNK = 64 * 1024;

    static byte[] touched() {
        byte[] chunk = new byte[CHUNK];
        Arrays.fill(chunk, (byte) 1);
        return chunk;
    }

    public static void main(String[] args) throws InterruptedException {
        double base = 0, leak = 0, warm = 0, warmSeconds = 1, churn = 0;
        for (int i = 0; i + 1 < args.length; i += 2) {
            double value = args[i].equals("--marker") ? 0 : Double.parseDouble(args[i + 1]);
            switch (args[i]) {
                case "--base" -> base = value;
                case "--leak" -> leak = value;
                case "--warm" -> warm = value;
                case "--warm-s" -> warmSeconds = value;
                case "--churn" -> churn = value;
                default -> { }
            }
        }
        List<byte[]> kept = new ArrayList<>();
        for (long i = 0; i < base * MIB; i += CHUNK) kept.add(touched());
        long start = System.nanoTime();
        long leaked = 0, cached = 0;
        long sink = 0;
        while (true) {
            double seconds = (System.nanoTime() - start) / 1e9;
            double leakDue = leak * MIB * seconds / 60;
            for (; leaked + CHUNK <= leakDue; leaked += CHUNK) kept.add(touched());
            double warmDue = warm * MIB * Math.min(1, seconds / warmSeconds);
            for (; cached + CHUNK <= warmDue; cached += CHUNK) kept.add(touched());
            for (long made = 0; made < churn * MIB / 10; made += CHUNK) {
                sink += touched()[(int) (made % CHUNK)];
            }
            if (sink < 0) System.out.println(sink);
            Thread.sleep(100);
        }
    }
}
