-- The example shop database: mariadb -h 127.0.0.1 -u root shop < examples/mysql/shop.sql
CREATE TABLE IF NOT EXISTS customers (
    id INT PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    country CHAR(2) NOT NULL
) CHARACTER SET utf8mb4;
CREATE TABLE IF NOT EXISTS orders (
    id INT PRIMARY KEY,
    customer_id INT NOT NULL,
    amount DECIMAL(10,2) NOT NULL,
    status ENUM('open', 'paid', 'cancelled') NOT NULL,
    ordered_at DATETIME(6) NOT NULL,
    -- Set on every insert and update: the cursor of incremental_orders.yaml.
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    KEY orders_updated_at (updated_at)
) CHARACTER SET utf8mb4;
INSERT INTO customers VALUES (1, 'Anna Nováková', 'CZ'), (2, 'Jan Kováč', 'SK'), (3, 'Eva Černá', 'CZ');
INSERT INTO orders VALUES
    (1, 1, 120.50, 'paid', '2024-03-01 10:00:00', '2024-03-01 10:05:00'),
    (2, 2, 80.00, 'paid', '2024-03-02 11:30:00', '2024-03-04 17:00:00'),
    (3, 3, 19.99, 'open', '2024-03-03 09:15:00.250000', '2024-03-03 09:15:00.250000'),
    (4, 1, 500.00, 'cancelled', '2024-03-04 16:45:00', '2024-03-04 17:00:00');
