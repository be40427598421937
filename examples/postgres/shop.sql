-- The example shop database: psql -h 127.0.0.1 -U postgres shop -f examples/postgres/shop.sql
CREATE TYPE order_status AS ENUM ('open', 'paid', 'cancelled');
CREATE TABLE customers (
    id integer PRIMARY KEY,
    name text NOT NULL,
    country char(2) NOT NULL
);
CREATE TABLE orders (
    id integer PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers,
    amount numeric(10,2) NOT NULL,
    status order_status NOT NULL,
    ordered_at timestamptz NOT NULL,
    tags text[] NOT NULL DEFAULT '{}',
    -- Set by the application on every insert and update: the cursor of incremental_orders.yaml.
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_updated_at ON orders (updated_at);
INSERT INTO customers VALUES (1, 'Anna Nováková', 'CZ'), (2, 'Jan Kováč', 'SK'), (3, 'Eva Černá', 'CZ');
INSERT INTO orders VALUES
    (1, 1, 120.50, 'paid', '2024-03-01 10:00:00+00', '{web}', '2024-03-01 10:05:00+00'),
    (2, 2, 80.00, 'paid', '2024-03-02 11:30:00+01', '{shop,promo}', '2024-03-04 17:00:00+00'),
    (3, 3, 19.99, 'open', '2024-03-03 09:15:00.25+00', '{}', '2024-03-03 09:15:00.25+00'),
    (4, 1, 500.00, 'cancelled', '2024-03-04 16:45:00+00', '{web}', '2024-03-04 17:00:00+00');
