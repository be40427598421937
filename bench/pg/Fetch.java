// Reads every row of one query through pgJDBC with a fetch size (a portal read in batches),
// touching each value; prints the row count. Used by bench/pg.sh.
import java.sql.*;

public class Fetch {
    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0], "osiris", args[1])) {
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.setFetchSize(Integer.parseInt(args[3]));
                long rows = 0, check = 0;
                try (ResultSet r = s.executeQuery(args[2])) {
                    int n = r.getMetaData().getColumnCount();
                    while (r.next()) {
                        for (int i = 1; i <= n; i++) {
                            Object v = r.getObject(i);
                            if (v != null) check += 1;
                        }
                        rows++;
                    }
                }
                System.out.println(rows + " " + check);
            }
        }
    }
}
