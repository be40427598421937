-- PostgreSQL's catalog over the attached sessions, built once per client connection in the
-- in-memory database (ADR 0029). Views read DuckDB's own duckdb_databases()/duckdb_tables()/
-- duckdb_columns() at query time, so a session attached later shows up at once. The translator
-- sends `pg_catalog.X` here as `osiris_catalog.X` and `information_schema.X` as
-- `osiris_information_schema.X`.
CREATE SCHEMA osiris_catalog;
CREATE SCHEMA osiris_information_schema;

-- Settings a client can SET / SHOW; the server keeps them current.
CREATE TABLE osiris_catalog.osiris_settings (
    name VARCHAR PRIMARY KEY, setting VARCHAR, reset_val VARCHAR, unit VARCHAR,
    category VARCHAR, short_desc VARCHAR, vartype VARCHAR, context VARCHAR);

-- The PostgreSQL OID (and typmod) of a DuckDB column type.
CREATE MACRO osiris_catalog.osiris_type_oid(t) AS CASE
    WHEN t LIKE '%[]' THEN CASE regexp_replace(t, '\[\]$', '')
        WHEN 'BOOLEAN' THEN 1000 WHEN 'SMALLINT' THEN 1005 WHEN 'TINYINT' THEN 1005
        WHEN 'INTEGER' THEN 1007 WHEN 'BIGINT' THEN 1016 WHEN 'FLOAT' THEN 1021
        WHEN 'DOUBLE' THEN 1022 WHEN 'DATE' THEN 1182 WHEN 'TIMESTAMP' THEN 1115
        WHEN 'TIMESTAMP WITH TIME ZONE' THEN 1185 WHEN 'UUID' THEN 2951
        ELSE 1009 END
    WHEN t LIKE 'DECIMAL%' THEN 1700
    ELSE CASE t
        WHEN 'BOOLEAN' THEN 16 WHEN 'TINYINT' THEN 21 WHEN 'SMALLINT' THEN 21
        WHEN 'UTINYINT' THEN 21 WHEN 'INTEGER' THEN 23 WHEN 'USMALLINT' THEN 23
        WHEN 'BIGINT' THEN 20 WHEN 'UINTEGER' THEN 20 WHEN 'UBIGINT' THEN 1700
        WHEN 'HUGEINT' THEN 1700 WHEN 'UHUGEINT' THEN 1700 WHEN 'FLOAT' THEN 700
        WHEN 'DOUBLE' THEN 701 WHEN 'DATE' THEN 1082 WHEN 'TIME' THEN 1083
        WHEN 'TIME WITH TIME ZONE' THEN 1266 WHEN 'TIMESTAMP' THEN 1114
        WHEN 'TIMESTAMP_S' THEN 1114 WHEN 'TIMESTAMP_MS' THEN 1114 WHEN 'TIMESTAMP_NS' THEN 1114
        WHEN 'TIMESTAMP WITH TIME ZONE' THEN 1184 WHEN 'INTERVAL' THEN 1186
        WHEN 'BLOB' THEN 17 WHEN 'UUID' THEN 2950 WHEN 'JSON' THEN 114
        ELSE 25 END
    END;
CREATE MACRO osiris_catalog.osiris_typmod(t, p, s) AS
    CASE WHEN t LIKE 'DECIMAL%' THEN ((p::INTEGER << 16) | s::INTEGER) + 4 ELSE -1 END;

CREATE TABLE osiris_catalog.pg_type (
    oid BIGINT, typname VARCHAR, typnamespace BIGINT, typowner BIGINT, typlen SMALLINT,
    typbyval BOOLEAN, typtype VARCHAR, typcategory VARCHAR, typispreferred BOOLEAN,
    typisdefined BOOLEAN, typdelim VARCHAR, typrelid BIGINT, typsubscript VARCHAR,
    typelem BIGINT, typarray BIGINT, typinput VARCHAR, typoutput VARCHAR, typreceive VARCHAR,
    typsend VARCHAR, typmodin VARCHAR, typmodout VARCHAR, typanalyze VARCHAR, typalign VARCHAR,
    typstorage VARCHAR, typnotnull BOOLEAN, typbasetype BIGINT, typtypmod INTEGER,
    typndims INTEGER, typcollation BIGINT, typdefaultbin VARCHAR, typdefault VARCHAR,
    typacl VARCHAR);
INSERT INTO osiris_catalog.pg_type
SELECT oid, typname, 11, 10, typlen, typlen BETWEEN 1 AND 8, typtype, typcategory,
       typcategory IN ('B', 'S') AND typname IN ('bool', 'text') OR typname IN ('float8', 'timestamptz', 'oid'),
       true, ',', 0, CASE WHEN elem <> 0 THEN 'array_subscript_handler' ELSE '-' END,
       elem, arr,
       CASE WHEN typcategory = 'A' THEN 'array_in' ELSE typname || 'in' END,
       CASE WHEN typcategory = 'A' THEN 'array_out' ELSE typname || 'out' END,
       CASE WHEN typcategory = 'A' THEN 'array_recv' ELSE typname || 'recv' END,
       CASE WHEN typcategory = 'A' THEN 'array_send' ELSE typname || 'send' END,
       '-', '-', '-', CASE WHEN typlen = 8 THEN 'd' WHEN typlen IN (4, -1) THEN 'i' WHEN typlen = 2 THEN 's' ELSE 'c' END,
       CASE WHEN typlen = -1 THEN 'x' ELSE 'p' END, false, 0, -1, 0,
       CASE WHEN typcategory = 'S' THEN 100 ELSE 0 END, NULL, NULL, NULL
FROM (VALUES
    (16, 'bool', 1, 'b', 'B', 0, 1000), (17, 'bytea', -1, 'b', 'U', 0, 1001),
    (18, 'char', 1, 'b', 'Z', 0, 1002), (19, 'name', 64, 'b', 'S', 0, 1003),
    (20, 'int8', 8, 'b', 'N', 0, 1016), (21, 'int2', 2, 'b', 'N', 0, 1005),
    (22, 'int2vector', -1, 'b', 'A', 21, 1006), (23, 'int4', 4, 'b', 'N', 0, 1007),
    (24, 'regproc', 4, 'b', 'N', 0, 1008), (25, 'text', -1, 'b', 'S', 0, 1009),
    (26, 'oid', 4, 'b', 'N', 0, 1028), (30, 'oidvector', -1, 'b', 'A', 26, 1013),
    (114, 'json', -1, 'b', 'U', 0, 199), (142, 'xml', -1, 'b', 'U', 0, 143),
    (700, 'float4', 4, 'b', 'N', 0, 1021), (701, 'float8', 8, 'b', 'N', 0, 1022),
    (705, 'unknown', -2, 'p', 'X', 0, 0), (790, 'money', 8, 'b', 'N', 0, 791),
    (1042, 'bpchar', -1, 'b', 'S', 0, 1014), (1043, 'varchar', -1, 'b', 'S', 0, 1015),
    (1082, 'date', 4, 'b', 'D', 0, 1182), (1083, 'time', 8, 'b', 'D', 0, 1183),
    (1114, 'timestamp', 8, 'b', 'D', 0, 1115), (1184, 'timestamptz', 8, 'b', 'D', 0, 1185),
    (1186, 'interval', 16, 'b', 'T', 0, 1187), (1266, 'timetz', 12, 'b', 'D', 0, 1270),
    (1560, 'bit', -1, 'b', 'V', 0, 1561), (1562, 'varbit', -1, 'b', 'V', 0, 1563),
    (1700, 'numeric', -1, 'b', 'N', 0, 1231), (2205, 'regclass', 4, 'b', 'N', 0, 2210),
    (2206, 'regtype', 4, 'b', 'N', 0, 2211), (2249, 'record', -1, 'p', 'P', 0, 2287),
    (2275, 'cstring', -2, 'p', 'P', 0, 1263), (2276, 'any', 4, 'p', 'P', 0, 0),
    (2277, 'anyarray', -1, 'p', 'P', 0, 0), (2278, 'void', 4, 'p', 'P', 0, 0),
    (2950, 'uuid', 16, 'b', 'U', 0, 2951), (3802, 'jsonb', -1, 'b', 'U', 0, 3807),
    (4089, 'regnamespace', 4, 'b', 'N', 0, 4090),
    (1000, '_bool', -1, 'b', 'A', 16, 0), (1001, '_bytea', -1, 'b', 'A', 17, 0),
    (1002, '_char', -1, 'b', 'A', 18, 0), (1003, '_name', -1, 'b', 'A', 19, 0),
    (1005, '_int2', -1, 'b', 'A', 21, 0), (1007, '_int4', -1, 'b', 'A', 23, 0),
    (1009, '_text', -1, 'b', 'A', 25, 0), (1014, '_bpchar', -1, 'b', 'A', 1042, 0),
    (1015, '_varchar', -1, 'b', 'A', 1043, 0), (1016, '_int8', -1, 'b', 'A', 20, 0),
    (1021, '_float4', -1, 'b', 'A', 700, 0), (1022, '_float8', -1, 'b', 'A', 701, 0),
    (1028, '_oid', -1, 'b', 'A', 26, 0), (1115, '_timestamp', -1, 'b', 'A', 1114, 0),
    (1182, '_date', -1, 'b', 'A', 1082, 0), (1183, '_time', -1, 'b', 'A', 1083, 0),
    (1185, '_timestamptz', -1, 'b', 'A', 1184, 0), (1187, '_interval', -1, 'b', 'A', 1186, 0),
    (1231, '_numeric', -1, 'b', 'A', 1700, 0), (199, '_json', -1, 'b', 'A', 114, 0),
    (2951, '_uuid', -1, 'b', 'A', 2950, 0), (3807, '_jsonb', -1, 'b', 'A', 3802, 0)
) AS t(oid, typname, typlen, typtype, typcategory, elem, arr);

-- Schemas: pg_catalog, information_schema, public (osiris_sessions) and one per session.
CREATE VIEW osiris_catalog.pg_namespace AS
SELECT * FROM (VALUES (11::BIGINT, 'pg_catalog', 10::BIGINT, NULL::VARCHAR),
                      (2200, 'public', 10, NULL), (13000, 'information_schema', 10, NULL))
    AS t(oid, nspname, nspowner, nspacl)
UNION ALL
SELECT database_oid, database_name, 10, NULL FROM duckdb_databases()
WHERE NOT internal AND database_name <> 'memory';

-- Relations: every table and view in a session's main schema, and osiris_sessions in public.
CREATE VIEW osiris_catalog.osiris_relations AS
SELECT t.table_oid AS oid, t.table_name AS relname,
       CASE WHEN t.database_name = 'memory' THEN 2200 ELSE t.database_oid END AS relnamespace,
       'r' AS relkind, t.column_count AS relnatts, t.estimated_size AS reltuples,
       t.database_name, t.schema_name, t.comment, t.sql
FROM duckdb_tables() t
WHERE NOT t.internal AND t.schema_name = 'main' AND t.database_name NOT IN ('system', 'temp')
UNION ALL
-- A step kept as a view over its input file (materialize: view, ADR 0036; its comment is the
-- source record) is a step table to clients, as it is with materialize: table.
SELECT v.view_oid, v.view_name,
       CASE WHEN v.database_name = 'memory' THEN 2200 ELSE v.database_oid END,
       CASE WHEN v.comment LIKE '%"osiris_source":%' THEN 'r' ELSE 'v' END, v.column_count, 0, v.database_name, v.schema_name, v.comment, v.sql
FROM duckdb_views() v
WHERE NOT v.internal AND v.schema_name = 'main' AND v.database_name NOT IN ('system', 'temp');

CREATE VIEW osiris_catalog.pg_class AS
SELECT oid, relname, relnamespace, 0::BIGINT AS reltype, 0::BIGINT AS reloftype,
       10::BIGINT AS relowner, CASE WHEN relkind = 'r' THEN 2 ELSE 0 END::BIGINT AS relam,
       0::BIGINT AS relfilenode, 0::BIGINT AS reltablespace, 0 AS relpages,
       reltuples::REAL AS reltuples, 0 AS relallvisible, 0::BIGINT AS reltoastrelid,
       false AS relhasindex, false AS relisshared, 'p' AS relpersistence, relkind,
       relnatts::SMALLINT AS relnatts, 0::SMALLINT AS relchecks, false AS relhasrules,
       false AS relhastriggers, false AS relhassubclass, false AS relrowsecurity,
       false AS relforcerowsecurity, true AS relispopulated, 'd' AS relreplident,
       false AS relispartition, 0::BIGINT AS relrewrite, 0::BIGINT AS relfrozenxid,
       0::BIGINT AS relminmxid, NULL::VARCHAR AS relacl, NULL::VARCHAR[] AS reloptions,
       NULL::VARCHAR AS relpartbound, false AS relhasoids
FROM osiris_catalog.osiris_relations;

CREATE VIEW osiris_catalog.pg_attribute AS
SELECT c.table_oid AS attrelid, c.column_name AS attname,
       osiris_catalog.osiris_type_oid(c.data_type)::BIGINT AS atttypid,
       -1 AS attstattarget, t.typlen AS attlen, c.column_index::SMALLINT AS attnum,
       CASE WHEN c.data_type LIKE '%[]' THEN 1 ELSE 0 END AS attndims, -1 AS attcacheoff,
       osiris_catalog.osiris_typmod(c.data_type, c.numeric_precision, c.numeric_scale) AS atttypmod,
       t.typbyval AS attbyval, t.typalign AS attalign, t.typstorage AS attstorage,
       '' AS attcompression, NOT c.is_nullable AS attnotnull,
       c.column_default IS NOT NULL AS atthasdef, false AS atthasmissing, '' AS attidentity,
       '' AS attgenerated, false AS attisdropped, true AS attislocal, 0 AS attinhcount,
       CASE WHEN t.typcategory = 'S' THEN 100 ELSE 0 END::BIGINT AS attcollation,
       NULL::VARCHAR AS attacl, NULL::VARCHAR[] AS attoptions,
       NULL::VARCHAR[] AS attfdwoptions, NULL::VARCHAR AS attmissingval,
       c.data_type AS osiris_data_type
FROM duckdb_columns() c
JOIN osiris_catalog.osiris_relations r ON r.oid = c.table_oid
LEFT JOIN osiris_catalog.pg_type t ON t.oid = osiris_catalog.osiris_type_oid(c.data_type);

CREATE VIEW osiris_catalog.pg_attrdef AS
SELECT (c.table_oid * 1000 + c.column_index)::BIGINT AS oid, c.table_oid AS adrelid,
       c.column_index::SMALLINT AS adnum, c.column_default AS adbin
FROM duckdb_columns() c JOIN osiris_catalog.osiris_relations r ON r.oid = c.table_oid
WHERE c.column_default IS NOT NULL;

CREATE VIEW osiris_catalog.pg_description AS
SELECT oid AS objoid, 1259::BIGINT AS classoid, 0 AS objsubid, comment AS description
FROM osiris_catalog.osiris_relations WHERE comment IS NOT NULL AND comment <> '';

CREATE VIEW osiris_catalog.pg_tables AS
SELECT n.nspname AS schemaname, c.relname AS tablename, 'osiris' AS tableowner,
       NULL::VARCHAR AS tablespace, false AS hasindexes, false AS hasrules,
       false AS hastriggers, false AS rowsecurity
FROM osiris_catalog.pg_class c JOIN osiris_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r';

CREATE VIEW osiris_catalog.pg_views AS
SELECT n.nspname AS schemaname, r.relname AS viewname, 'osiris' AS viewowner,
       r.sql AS definition
FROM osiris_catalog.osiris_relations r JOIN osiris_catalog.pg_namespace n ON n.oid = r.relnamespace
WHERE r.relkind = 'v';

CREATE VIEW osiris_catalog.pg_matviews AS
SELECT NULL::VARCHAR AS schemaname, NULL::VARCHAR AS matviewname, NULL::VARCHAR AS matviewowner,
       NULL::VARCHAR AS tablespace, false AS hasindexes, false AS ispopulated,
       NULL::VARCHAR AS definition WHERE false;

CREATE VIEW osiris_catalog.pg_stat_user_tables AS
SELECT c.oid AS relid, n.nspname AS schemaname, c.relname, 0::BIGINT AS seq_scan,
       0::BIGINT AS seq_tup_read, 0::BIGINT AS idx_scan, 0::BIGINT AS idx_tup_fetch,
       0::BIGINT AS n_tup_ins, 0::BIGINT AS n_tup_upd, 0::BIGINT AS n_tup_del,
       c.reltuples::BIGINT AS n_live_tup, 0::BIGINT AS n_dead_tup,
       NULL::TIMESTAMPTZ AS last_vacuum, NULL::TIMESTAMPTZ AS last_autovacuum,
       NULL::TIMESTAMPTZ AS last_analyze, NULL::TIMESTAMPTZ AS last_autoanalyze
FROM osiris_catalog.pg_class c JOIN osiris_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r';
CREATE VIEW osiris_catalog.pg_stat_all_tables AS SELECT * FROM osiris_catalog.pg_stat_user_tables;

CREATE VIEW osiris_catalog.pg_database AS
SELECT 16384::BIGINT AS oid, 'osiris' AS datname, 10::BIGINT AS datdba, 6 AS encoding,
       'c' AS datlocprovider, false AS datistemplate, true AS datallowconn, -1 AS datconnlimit,
       0::BIGINT AS datfrozenxid, 0::BIGINT AS datminmxid, 1663::BIGINT AS dattablespace,
       'C' AS datcollate, 'C' AS datctype, NULL::VARCHAR AS daticulocale,
       NULL::VARCHAR AS daticurules, NULL::VARCHAR AS datcollversion, NULL::VARCHAR AS datacl,
       NULL::VARCHAR AS datlocale;

CREATE VIEW osiris_catalog.pg_roles AS
SELECT 10::BIGINT AS oid, 'osiris' AS rolname, true AS rolsuper, true AS rolinherit,
       false AS rolcreaterole, false AS rolcreatedb, true AS rolcanlogin,
       false AS rolreplication, -1 AS rolconnlimit, '********' AS rolpassword,
       NULL::TIMESTAMPTZ AS rolvaliduntil, false AS rolbypassrls, NULL::VARCHAR[] AS rolconfig;
CREATE VIEW osiris_catalog.pg_user AS
SELECT rolname AS usename, oid AS usesysid, rolcreatedb AS usecreatedb, rolsuper AS usesuper,
       false AS userepl, false AS usebypassrls, rolpassword AS passwd,
       rolvaliduntil AS valuntil, rolconfig AS useconfig FROM osiris_catalog.pg_roles;
CREATE VIEW osiris_catalog.pg_authid AS SELECT * FROM osiris_catalog.pg_roles;

CREATE VIEW osiris_catalog.pg_am AS
SELECT * FROM (VALUES (2::BIGINT, 'heap', 'heap_tableam_handler', 't'),
                      (403, 'btree', 'bthandler', 'i')) AS t(oid, amname, amhandler, amtype);

CREATE VIEW osiris_catalog.pg_settings AS
SELECT name, setting, unit, category, short_desc, NULL::VARCHAR AS extra_desc, context,
       vartype, 'default' AS source, NULL::VARCHAR AS min_val, NULL::VARCHAR AS max_val,
       NULL::VARCHAR[] AS enumvals, reset_val AS boot_val, reset_val, NULL::VARCHAR AS sourcefile,
       NULL::INTEGER AS sourceline, false AS pending_restart
FROM osiris_catalog.osiris_settings WHERE name NOT LIKE 'osiris.%';

CREATE VIEW osiris_catalog.pg_collation AS
SELECT * FROM (VALUES (100::BIGINT, 'default', 11::BIGINT, 10::BIGINT, 'd', true, 6, NULL::VARCHAR, NULL::VARCHAR),
                      (950, 'C', 11, 10, 'c', true, -1, 'C', 'C'))
    AS t(oid, collname, collnamespace, collowner, collprovider, collisdeterministic,
         collencoding, collcollate, collctype);

CREATE VIEW osiris_catalog.pg_proc AS
SELECT (row_number() OVER () + 100000)::BIGINT AS oid, function_name AS proname,
       11::BIGINT AS pronamespace, 10::BIGINT AS proowner, 12::BIGINT AS prolang,
       0::REAL AS procost, 0::REAL AS prorows, 0::BIGINT AS provariadic,
       '-' AS prosupport, CASE WHEN function_type = 'aggregate' THEN 'a' ELSE 'f' END AS prokind,
       false AS prosecdef, false AS proleakproof, false AS proisstrict, false AS proretset,
       'i' AS provolatile, 's' AS proparallel, len(parameters)::SMALLINT AS pronargs,
       0::SMALLINT AS pronargdefaults, 25::BIGINT AS prorettype, ''::VARCHAR AS proargtypes,
       NULL::BIGINT[] AS proallargtypes, NULL::VARCHAR[] AS proargmodes,
       parameters AS proargnames, NULL::VARCHAR AS proargdefaults, NULL::BIGINT[] AS protrftypes,
       function_name AS prosrc, NULL::VARCHAR AS probin, NULL::VARCHAR AS prosqlbody,
       NULL::VARCHAR[] AS proconfig, NULL::VARCHAR AS proacl
FROM (SELECT DISTINCT function_name, function_type, parameters FROM duckdb_functions()
      WHERE schema_name = 'main' AND function_type IN ('scalar', 'aggregate'));

-- Catalogs that are empty here: no indexes, constraints, inheritance, policies, publications.
CREATE VIEW osiris_catalog.pg_index AS
SELECT 0::BIGINT AS indexrelid, 0::BIGINT AS indrelid, 0::SMALLINT AS indnatts,
       0::SMALLINT AS indnkeyatts, false AS indisunique, false AS indnullsnotdistinct,
       false AS indisprimary, false AS indisexclusion, false AS indimmediate,
       false AS indisclustered, true AS indisvalid, false AS indcheckxmin, true AS indisready,
       true AS indislive, false AS indisreplident, []::SMALLINT[] AS indkey,
       []::BIGINT[] AS indcollation, []::BIGINT[] AS indclass, []::SMALLINT[] AS indoption,
       NULL::VARCHAR AS indexprs, NULL::VARCHAR AS indpred WHERE false;
CREATE VIEW osiris_catalog.pg_constraint AS
SELECT 0::BIGINT AS oid, ''::VARCHAR AS conname, 0::BIGINT AS connamespace, ''::VARCHAR AS contype,
       false AS condeferrable, false AS condeferred, true AS convalidated, 0::BIGINT AS conrelid,
       0::BIGINT AS contypid, 0::BIGINT AS conindid, 0::BIGINT AS conparentid,
       0::BIGINT AS confrelid, ''::VARCHAR AS confupdtype, ''::VARCHAR AS confdeltype,
       ''::VARCHAR AS confmatchtype, true AS conislocal, 0 AS coninhcount, false AS connoinherit,
       []::SMALLINT[] AS conkey, []::SMALLINT[] AS confkey, []::BIGINT[] AS conpfeqop,
       []::BIGINT[] AS conppeqop, []::BIGINT[] AS conffeqop, []::SMALLINT[] AS confdelsetcols,
       []::BIGINT[] AS conexclop, NULL::VARCHAR AS conbin WHERE false;
CREATE VIEW osiris_catalog.pg_inherits AS
SELECT 0::BIGINT AS inhrelid, 0::BIGINT AS inhparent, 0 AS inhseqno, false AS inhdetachpending WHERE false;
CREATE VIEW osiris_catalog.pg_policy AS
SELECT 0::BIGINT AS oid, ''::VARCHAR AS polname, 0::BIGINT AS polrelid, ''::VARCHAR AS polcmd,
       true AS polpermissive, []::BIGINT[] AS polroles, NULL::VARCHAR AS polqual,
       NULL::VARCHAR AS polwithcheck WHERE false;
CREATE VIEW osiris_catalog.pg_statistic_ext AS
SELECT 0::BIGINT AS oid, 0::BIGINT AS stxrelid, ''::VARCHAR AS stxname, 0::BIGINT AS stxnamespace,
       0::BIGINT AS stxowner, 0 AS stxstattarget, []::SMALLINT[] AS stxkeys,
       []::VARCHAR[] AS stxkind, NULL::VARCHAR AS stxexprs WHERE false;
CREATE VIEW osiris_catalog.pg_publication AS
SELECT 0::BIGINT AS oid, ''::VARCHAR AS pubname, 0::BIGINT AS pubowner, false AS puballtables,
       false AS pubinsert, false AS pubupdate, false AS pubdelete, false AS pubtruncate,
       false AS pubviaroot WHERE false;
CREATE VIEW osiris_catalog.pg_publication_rel AS
SELECT 0::BIGINT AS oid, 0::BIGINT AS prpubid, 0::BIGINT AS prrelid, NULL::VARCHAR AS prqual,
       NULL::SMALLINT[] AS prattrs WHERE false;
CREATE VIEW osiris_catalog.pg_publication_namespace AS
SELECT 0::BIGINT AS oid, 0::BIGINT AS pnpubid, 0::BIGINT AS pnnspid WHERE false;
CREATE VIEW osiris_catalog.pg_publication_tables AS
SELECT ''::VARCHAR AS pubname, ''::VARCHAR AS schemaname, ''::VARCHAR AS tablename,
       []::VARCHAR[] AS attnames, NULL::VARCHAR AS rowfilter WHERE false;
CREATE VIEW osiris_catalog.pg_trigger AS
SELECT 0::BIGINT AS oid, 0::BIGINT AS tgrelid, 0::BIGINT AS tgparentid, ''::VARCHAR AS tgname,
       0::BIGINT AS tgfoid, 0::SMALLINT AS tgtype, 'O' AS tgenabled, false AS tgisinternal,
       0::BIGINT AS tgconstrrelid, 0::BIGINT AS tgconstrindid, 0::BIGINT AS tgconstraint,
       false AS tgdeferrable, false AS tginitdeferred, 0::SMALLINT AS tgnargs WHERE false;
CREATE VIEW osiris_catalog.pg_rewrite AS
SELECT 0::BIGINT AS oid, ''::VARCHAR AS rulename, 0::BIGINT AS ev_class, '' AS ev_type,
       '' AS ev_enabled, false AS is_instead WHERE false;
CREATE VIEW osiris_catalog.pg_partitioned_table AS
SELECT 0::BIGINT AS partrelid, '' AS partstrat, 0::SMALLINT AS partnatts WHERE false;
CREATE VIEW osiris_catalog.pg_foreign_table AS
SELECT 0::BIGINT AS ftrelid, 0::BIGINT AS ftserver WHERE false;
CREATE VIEW osiris_catalog.pg_sequence AS
SELECT 0::BIGINT AS seqrelid, 0::BIGINT AS seqtypid, 0::BIGINT AS seqstart,
       0::BIGINT AS seqincrement, 0::BIGINT AS seqmax, 0::BIGINT AS seqmin, 0::BIGINT AS seqcache,
       false AS seqcycle WHERE false;
CREATE VIEW osiris_catalog.pg_extension AS
SELECT 0::BIGINT AS oid, ''::VARCHAR AS extname, 0::BIGINT AS extowner,
       0::BIGINT AS extnamespace, false AS extrelocatable, ''::VARCHAR AS extversion WHERE false;
CREATE VIEW osiris_catalog.pg_enum AS
SELECT 0::BIGINT AS oid, 0::BIGINT AS enumtypid, 0::REAL AS enumsortorder, ''::VARCHAR AS enumlabel WHERE false;
CREATE VIEW osiris_catalog.pg_depend AS
SELECT 0::BIGINT AS classid, 0::BIGINT AS objid, 0 AS objsubid, 0::BIGINT AS refclassid,
       0::BIGINT AS refobjid, 0 AS refobjsubid, '' AS deptype WHERE false;
CREATE VIEW osiris_catalog.pg_shdescription AS
SELECT 0::BIGINT AS objoid, 0::BIGINT AS classoid, ''::VARCHAR AS description WHERE false;
CREATE VIEW osiris_catalog.pg_tablespace AS
SELECT * FROM (VALUES (1663::BIGINT, 'pg_default', 10::BIGINT)) AS t(oid, spcname, spcowner);
CREATE VIEW osiris_catalog.pg_language AS
SELECT * FROM (VALUES (12::BIGINT, 'internal'), (14, 'sql')) AS t(oid, lanname);
CREATE VIEW osiris_catalog.pg_event_trigger AS
SELECT 0::BIGINT AS oid, ''::VARCHAR AS evtname WHERE false;
CREATE VIEW osiris_catalog.pg_operator AS
SELECT 0::BIGINT AS oid, ''::VARCHAR AS oprname, 0::BIGINT AS oprnamespace WHERE false;
CREATE VIEW osiris_catalog.pg_opclass AS
SELECT 0::BIGINT AS oid, 0::BIGINT AS opcmethod, ''::VARCHAR AS opcname, 11::BIGINT AS opcnamespace,
       10::BIGINT AS opcowner, 0::BIGINT AS opcfamily, 0::BIGINT AS opcintype, true AS opcdefault,
       0::BIGINT AS opckeytype WHERE false;
CREATE VIEW osiris_catalog.pg_cast AS
SELECT 0::BIGINT AS oid, 0::BIGINT AS castsource, 0::BIGINT AS casttarget WHERE false;
CREATE VIEW osiris_catalog.pg_range AS
SELECT 0::BIGINT AS rngtypid, 0::BIGINT AS rngsubtype WHERE false;
CREATE VIEW osiris_catalog.pg_locks AS
SELECT ''::VARCHAR AS locktype, 0::BIGINT AS relation, 0 AS pid, ''::VARCHAR AS mode, true AS granted WHERE false;
-- Functions clients call. `osiris.*` settings are the server's own (kept out of pg_settings).
CREATE MACRO osiris_catalog.osiris_setting(n) AS
    (SELECT setting FROM osiris_catalog.osiris_settings WHERE name = lower(n));
CREATE MACRO osiris_catalog.current_setting(n) AS osiris_catalog.osiris_setting(n),
    (n, missing_ok) AS osiris_catalog.osiris_setting(n);
-- Settings change through SET only: set_config answers the value without keeping it.
CREATE MACRO osiris_catalog.set_config(n, v, is_local) AS v;
CREATE MACRO osiris_catalog.version() AS getvariable('osiris.version');
CREATE MACRO osiris_catalog.current_database() AS 'osiris';
CREATE MACRO osiris_catalog.current_catalog() AS 'osiris';
CREATE MACRO osiris_catalog.current_user() AS getvariable('osiris.user');
CREATE MACRO osiris_catalog.session_user() AS getvariable('osiris.user');
CREATE MACRO osiris_catalog."user"() AS getvariable('osiris.user');
CREATE MACRO osiris_catalog.current_role() AS getvariable('osiris.user');
CREATE MACRO osiris_catalog.current_schema() AS getvariable('osiris.current_schema');
CREATE MACRO osiris_catalog.current_schemas(implicit) AS
    CASE WHEN implicit THEN ['pg_catalog'] ELSE [] END
    || string_split(getvariable('osiris.schemas'), ',');
CREATE MACRO osiris_catalog.pg_backend_pid() AS getvariable('osiris.pid')::INTEGER;
CREATE MACRO osiris_catalog.inet_server_addr() AS '127.0.0.1';
CREATE MACRO osiris_catalog.inet_server_port() AS NULL::INTEGER;
CREATE MACRO osiris_catalog.pg_postmaster_start_time() AS
    getvariable('osiris.start_time')::TIMESTAMPTZ;
CREATE MACRO osiris_catalog.pg_is_in_recovery() AS false;
CREATE MACRO osiris_catalog.txid_current() AS 1::BIGINT;
CREATE MACRO osiris_catalog.pg_encoding_to_char(e) AS CASE WHEN e = 6 THEN 'UTF8' ELSE 'SQL_ASCII' END;
CREATE MACRO osiris_catalog.format_type(p_oid, typmod) AS CASE
    WHEN p_oid IS NULL THEN NULL
    WHEN p_oid = 1700 AND typmod IS NOT NULL AND typmod >= 4 THEN
        'numeric(' || ((typmod - 4) >> 16) || ',' || ((typmod - 4) & 65535) || ')'
    WHEN p_oid = 1043 AND typmod IS NOT NULL AND typmod >= 4 THEN 'character varying(' || (typmod - 4) || ')'
    ELSE coalesce((SELECT CASE ft.typname
        WHEN 'int2' THEN 'smallint' WHEN 'int4' THEN 'integer' WHEN 'int8' THEN 'bigint'
        WHEN 'float4' THEN 'real' WHEN 'float8' THEN 'double precision' WHEN 'bool' THEN 'boolean'
        WHEN 'varchar' THEN 'character varying' WHEN 'bpchar' THEN 'character'
        WHEN 'timestamp' THEN 'timestamp without time zone'
        WHEN 'timestamptz' THEN 'timestamp with time zone'
        WHEN 'time' THEN 'time without time zone' WHEN 'timetz' THEN 'time with time zone'
        WHEN '_int2' THEN 'smallint[]' WHEN '_int4' THEN 'integer[]' WHEN '_int8' THEN 'bigint[]'
        WHEN '_float4' THEN 'real[]' WHEN '_float8' THEN 'double precision[]'
        WHEN '_bool' THEN 'boolean[]' WHEN '_varchar' THEN 'character varying[]'
        WHEN '_timestamp' THEN 'timestamp without time zone[]'
        WHEN '_timestamptz' THEN 'timestamp with time zone[]'
        ELSE CASE WHEN ft.typname LIKE '\_%' ESCAPE '\' THEN substr(ft.typname, 2) || '[]' ELSE ft.typname END
        END FROM osiris_catalog.pg_type ft WHERE ft.oid = p_oid), '???')
    END;
CREATE MACRO osiris_catalog.pg_get_expr(expr, rel) AS expr,
    (expr, rel, pretty) AS expr;
CREATE MACRO osiris_catalog.pg_get_constraintdef(oid) AS NULL::VARCHAR,
    (oid, pretty) AS NULL::VARCHAR;
CREATE MACRO osiris_catalog.pg_get_indexdef(oid) AS NULL::VARCHAR,
    (oid, col, pretty) AS NULL::VARCHAR;
CREATE MACRO osiris_catalog.osiris_viewdef(p_oid) AS
    (SELECT r.sql FROM osiris_catalog.osiris_relations r WHERE r.oid = p_oid);
CREATE MACRO osiris_catalog.pg_get_viewdef(p_oid) AS osiris_catalog.osiris_viewdef(p_oid),
    (p_oid, pretty) AS osiris_catalog.osiris_viewdef(p_oid);
CREATE MACRO osiris_catalog.pg_get_triggerdef(oid) AS NULL::VARCHAR,
    (oid, pretty) AS NULL::VARCHAR;
CREATE MACRO osiris_catalog.pg_get_ruledef(oid) AS NULL::VARCHAR,
    (oid, pretty) AS NULL::VARCHAR;
CREATE MACRO osiris_catalog.pg_get_statisticsobjdef_columns(oid) AS NULL::VARCHAR;
CREATE MACRO osiris_catalog.pg_get_partkeydef(oid) AS NULL::VARCHAR;
CREATE MACRO osiris_catalog.pg_get_function_identity_arguments(oid) AS '';
CREATE MACRO osiris_catalog.pg_get_function_arguments(oid) AS '';
CREATE MACRO osiris_catalog.pg_get_function_result(oid) AS 'text';
CREATE MACRO osiris_catalog.pg_get_userbyid(oid) AS 'osiris';
CREATE MACRO osiris_catalog.pg_table_is_visible(p_oid) AS
    (SELECT count(*) > 0 FROM osiris_catalog.osiris_relations r
     WHERE r.oid = p_oid AND (r.relnamespace = 2200 OR list_contains(
        string_split(getvariable('osiris.schemas'), ','), r.database_name)));
CREATE MACRO osiris_catalog.pg_type_is_visible(oid) AS true;
CREATE MACRO osiris_catalog.pg_collation_is_visible(oid) AS true;
-- generate_subscripts(a, 1) in a select list.
CREATE MACRO osiris_catalog.osiris_subscripts(arr, dim) AS unnest(generate_series(1, len(arr)));
-- information_schema._pg_expandarray(a) in a select list: one (x, n) record per element.
CREATE MACRO osiris_catalog.osiris_expandarray(arr) AS
    unnest(list_transform(generate_series(1, len(arr)), i -> {'x': arr[i], 'n': i}));
CREATE MACRO osiris_catalog.pg_relation_is_publishable(oid) AS false;
CREATE MACRO osiris_catalog.pg_function_is_visible(oid) AS true;
CREATE MACRO osiris_catalog.has_table_privilege(a, b) AS true,
    (a, b, c) AS true;
CREATE MACRO osiris_catalog.has_schema_privilege(a, b) AS true,
    (a, b, c) AS true;
CREATE MACRO osiris_catalog.has_database_privilege(a, b) AS true,
    (a, b, c) AS true;
CREATE MACRO osiris_catalog.has_column_privilege(a, b, c) AS true,
    (a, b, c, d) AS true;
CREATE MACRO osiris_catalog.has_any_column_privilege(a, b) AS true,
    (a, b, c) AS true;
CREATE MACRO osiris_catalog.has_function_privilege(a, b) AS true,
    (a, b, c) AS true;
CREATE MACRO osiris_catalog.has_sequence_privilege(a, b) AS true,
    (a, b, c) AS true;
CREATE MACRO osiris_catalog.pg_has_role(a, b) AS true,
    (a, b, c) AS true;
CREATE MACRO osiris_catalog.osiris_description(p_oid) AS
    (SELECT d.description FROM osiris_catalog.pg_description d WHERE d.objoid = p_oid);
CREATE MACRO osiris_catalog.obj_description(p_oid) AS osiris_catalog.osiris_description(p_oid),
    (p_oid, cat) AS osiris_catalog.osiris_description(p_oid);
CREATE MACRO osiris_catalog.shobj_description(oid, cat) AS NULL::VARCHAR;
CREATE MACRO osiris_catalog.col_description(p_rel, p_col) AS
    (SELECT c.comment FROM duckdb_columns() c
     WHERE c.table_oid = p_rel AND c.column_index = p_col
       AND c.comment <> '');
CREATE MACRO osiris_catalog.pg_get_serial_sequence(t, c) AS NULL::VARCHAR;
CREATE MACRO osiris_catalog.osiris_relation_size(p_oid) AS
    coalesce((SELECT (r.reltuples * 8)::BIGINT FROM osiris_catalog.osiris_relations r
              WHERE r.oid = p_oid), 0::BIGINT);
CREATE MACRO osiris_catalog.pg_relation_size(p_oid) AS osiris_catalog.osiris_relation_size(p_oid),
    (p_oid, fork) AS osiris_catalog.osiris_relation_size(p_oid);
CREATE MACRO osiris_catalog.pg_total_relation_size(oid) AS osiris_catalog.osiris_relation_size(oid);
CREATE MACRO osiris_catalog.pg_table_size(oid) AS osiris_catalog.osiris_relation_size(oid);
CREATE MACRO osiris_catalog.pg_indexes_size(oid) AS 0::BIGINT;
CREATE MACRO osiris_catalog.pg_database_size(d) AS 0::BIGINT;
CREATE MACRO osiris_catalog.array_upper(arr, dim) AS CASE WHEN len(arr) = 0 THEN NULL ELSE len(arr) END;
CREATE MACRO osiris_catalog.array_lower(arr, dim) AS CASE WHEN len(arr) = 0 THEN NULL ELSE 1 END;
CREATE MACRO osiris_catalog.generate_subscripts(arr, dim) AS TABLE
    SELECT unnest(generate_series(1, len(arr))) AS generate_subscripts;
CREATE MACRO osiris_catalog.quote_ident(s) AS
    CASE WHEN regexp_full_match(s, '[a-z_][a-z0-9_$]*') THEN s ELSE '"' || replace(s, '"', '""') || '"' END;
CREATE MACRO osiris_catalog.osiris_parse_ident(s) AS
    list_transform(regexp_extract_all(s, '"(?:[^"]|"")*"|[^.]+'),
        p -> CASE WHEN p LIKE '"%' THEN replace(p[2:-2], '""', '"') ELSE lower(trim(p)) END);
CREATE MACRO osiris_catalog.parse_ident(s) AS osiris_catalog.osiris_parse_ident(s),
    (s, strict) AS osiris_catalog.osiris_parse_ident(s);
CREATE MACRO osiris_catalog.pg_get_keywords() AS TABLE
    SELECT keyword_name AS word,
           CASE keyword_category WHEN 'reserved' THEN 'R' WHEN 'unreserved' THEN 'U'
                WHEN 'type_function' THEN 'T' ELSE 'C' END AS catcode,
           false AS barelabel, keyword_category AS catdesc, 'can be bare label' AS baredesc
    FROM duckdb_keywords();
-- ::regclass of a name ('tbl', 'schema.tbl', '"Odd".tbl'); NULL when there is none. The system
-- catalogs that clients name in `classoid = 'pg_catalog.pg_class'::regclass` (comments) have
-- PostgreSQL's own oids, as pg_description.classoid does.
CREATE MACRO osiris_catalog.osiris_regclass(name) AS coalesce((
    SELECT r.oid FROM osiris_catalog.osiris_relations r
    JOIN osiris_catalog.pg_namespace n ON n.oid = r.relnamespace
    WHERE r.relname = list_last(osiris_catalog.parse_ident(name))
      AND (len(osiris_catalog.parse_ident(name)) = 1
           OR n.nspname = osiris_catalog.parse_ident(name)[-2])
    ORDER BY (r.relnamespace = 2200) DESC LIMIT 1),
    CASE WHEN len(osiris_catalog.parse_ident(name)) = 1
              OR osiris_catalog.parse_ident(name)[-2] = 'pg_catalog'
         THEN CASE list_last(osiris_catalog.parse_ident(name))
              WHEN 'pg_class' THEN 1259 WHEN 'pg_type' THEN 1247 WHEN 'pg_proc' THEN 1255
              WHEN 'pg_attribute' THEN 1249 WHEN 'pg_namespace' THEN 2615
              WHEN 'pg_constraint' THEN 2606 WHEN 'pg_index' THEN 2610
              WHEN 'pg_description' THEN 2609 WHEN 'pg_database' THEN 1262
              WHEN 'pg_am' THEN 2601 WHEN 'pg_attrdef' THEN 2604 WHEN 'pg_trigger' THEN 2620
              WHEN 'pg_rewrite' THEN 2618 WHEN 'pg_authid' THEN 1260 END END);
-- A regclass printed: the relation's name, schema-qualified when it is not on the search path.
CREATE MACRO osiris_catalog.osiris_regclass_name(o) AS coalesce((
    SELECT CASE WHEN r.relnamespace = 2200 OR list_contains(
                    string_split(getvariable('osiris.schemas'), ','), r.database_name)
                THEN osiris_catalog.quote_ident(r.relname)
                ELSE osiris_catalog.quote_ident(n.nspname) || '.' || osiris_catalog.quote_ident(r.relname)
           END
    FROM osiris_catalog.osiris_relations r JOIN osiris_catalog.pg_namespace n ON n.oid = r.relnamespace
    WHERE r.oid = o), CAST(o AS VARCHAR));
CREATE MACRO osiris_catalog.osiris_regtype(name) AS (
    SELECT t.oid FROM osiris_catalog.pg_type t
    WHERE t.typname = list_last(osiris_catalog.parse_ident(name))
       OR osiris_catalog.format_type(t.oid, NULL) = lower(name) LIMIT 1);
CREATE MACRO osiris_catalog.osiris_regnamespace(name) AS (
    SELECT n.oid FROM osiris_catalog.pg_namespace n WHERE n.nspname = name);
CREATE MACRO osiris_catalog.osiris_regproc(name) AS (
    SELECT p.oid FROM osiris_catalog.pg_proc p WHERE p.proname = name LIMIT 1);
CREATE MACRO osiris_catalog.pg_typeof(x) AS typeof(x);
CREATE MACRO osiris_catalog.to_regclass(n) AS osiris_catalog.osiris_regclass(n);
CREATE MACRO osiris_catalog.to_regtype(n) AS osiris_catalog.osiris_regtype(n);
CREATE MACRO osiris_catalog.to_regnamespace(n) AS osiris_catalog.osiris_regnamespace(n);
CREATE MACRO osiris_catalog.to_regproc(n) AS osiris_catalog.osiris_regproc(n);

CREATE VIEW osiris_catalog.pg_stat_activity AS
SELECT 16384::BIGINT AS datid, 'osiris' AS datname, getvariable('osiris.pid')::INTEGER AS pid,
       'osiris' AS usename, osiris_catalog.osiris_setting('application_name') AS application_name,
       NULL::VARCHAR AS client_addr, 'active' AS state, NULL::VARCHAR AS query;

-- information_schema, from the same relations.
CREATE VIEW osiris_information_schema.schemata AS
SELECT 'osiris' AS catalog_name, nspname AS schema_name, 'osiris' AS schema_owner,
       NULL::VARCHAR AS default_character_set_catalog, NULL::VARCHAR AS default_character_set_schema,
       NULL::VARCHAR AS default_character_set_name, NULL::VARCHAR AS sql_path
FROM osiris_catalog.pg_namespace;
CREATE VIEW osiris_information_schema.tables AS
SELECT 'osiris' AS table_catalog, n.nspname AS table_schema, r.relname AS table_name,
       CASE r.relkind WHEN 'v' THEN 'VIEW' ELSE 'BASE TABLE' END AS table_type,
       NULL::VARCHAR AS self_referencing_column_name, NULL::VARCHAR AS reference_generation,
       NULL::VARCHAR AS user_defined_type_catalog, NULL::VARCHAR AS user_defined_type_schema,
       NULL::VARCHAR AS user_defined_type_name, 'NO' AS is_insertable_into, 'NO' AS is_typed,
       NULL::VARCHAR AS commit_action
FROM osiris_catalog.osiris_relations r JOIN osiris_catalog.pg_namespace n ON n.oid = r.relnamespace;
CREATE VIEW osiris_information_schema.views AS
SELECT table_catalog, table_schema, table_name, NULL::VARCHAR AS view_definition,
       'NONE' AS check_option, 'NO' AS is_updatable, 'NO' AS is_insertable_into
FROM osiris_information_schema.tables WHERE table_type = 'VIEW';
CREATE VIEW osiris_information_schema.columns AS
SELECT 'osiris' AS table_catalog, n.nspname AS table_schema, r.relname AS table_name,
       a.attname AS column_name, a.attnum::INTEGER AS ordinal_position,
       c.column_default AS column_default, CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END AS is_nullable,
       CASE WHEN t.typcategory = 'A' THEN 'ARRAY' ELSE osiris_catalog.format_type(a.atttypid, -1) END AS data_type,
       NULL::INTEGER AS character_maximum_length, NULL::INTEGER AS character_octet_length,
       CASE WHEN a.atttypid = 1700 THEN c.numeric_precision WHEN a.atttypid IN (20, 21, 23, 700, 701) THEN c.numeric_precision END::INTEGER AS numeric_precision,
       CASE WHEN a.atttypid IN (1700, 20, 21, 23) THEN 2 WHEN a.atttypid IN (700, 701) THEN 2 END::INTEGER AS numeric_precision_radix,
       CASE WHEN a.atttypid IN (1700, 20, 21, 23) THEN c.numeric_scale END::INTEGER AS numeric_scale,
       CASE WHEN a.atttypid IN (1082, 1083, 1114, 1184) THEN 6 END::INTEGER AS datetime_precision,
       NULL::VARCHAR AS interval_type, NULL::INTEGER AS interval_precision,
       NULL::VARCHAR AS character_set_catalog, NULL::VARCHAR AS character_set_schema,
       NULL::VARCHAR AS character_set_name, NULL::VARCHAR AS collation_catalog,
       NULL::VARCHAR AS collation_schema, NULL::VARCHAR AS collation_name,
       NULL::VARCHAR AS domain_catalog, NULL::VARCHAR AS domain_schema, NULL::VARCHAR AS domain_name,
       'osiris' AS udt_catalog, 'pg_catalog' AS udt_schema, t.typname AS udt_name,
       NULL::VARCHAR AS scope_catalog, NULL::VARCHAR AS scope_schema, NULL::VARCHAR AS scope_name,
       NULL::INTEGER AS maximum_cardinality, a.attnum::VARCHAR AS dtd_identifier,
       'NO' AS is_self_referencing, 'NO' AS is_identity, NULL::VARCHAR AS identity_generation,
       NULL::VARCHAR AS identity_start, NULL::VARCHAR AS identity_increment,
       NULL::VARCHAR AS identity_maximum, NULL::VARCHAR AS identity_minimum,
       NULL::VARCHAR AS identity_cycle, 'NEVER' AS is_generated,
       NULL::VARCHAR AS generation_expression, 'NO' AS is_updatable
FROM osiris_catalog.pg_attribute a
JOIN osiris_catalog.osiris_relations r ON r.oid = a.attrelid
JOIN osiris_catalog.pg_namespace n ON n.oid = r.relnamespace
JOIN osiris_catalog.pg_type t ON t.oid = a.atttypid
JOIN duckdb_columns() c ON c.table_oid = a.attrelid AND c.column_index = a.attnum;
CREATE VIEW osiris_information_schema.table_constraints AS
SELECT ''::VARCHAR AS constraint_catalog, ''::VARCHAR AS constraint_schema,
       ''::VARCHAR AS constraint_name, ''::VARCHAR AS table_catalog, ''::VARCHAR AS table_schema,
       ''::VARCHAR AS table_name, ''::VARCHAR AS constraint_type, 'NO' AS is_deferrable,
       'NO' AS initially_deferred, 'YES' AS enforced WHERE false;
CREATE VIEW osiris_information_schema.key_column_usage AS
SELECT ''::VARCHAR AS constraint_catalog, ''::VARCHAR AS constraint_schema,
       ''::VARCHAR AS constraint_name, ''::VARCHAR AS table_catalog, ''::VARCHAR AS table_schema,
       ''::VARCHAR AS table_name, ''::VARCHAR AS column_name, 0 AS ordinal_position,
       NULL::INTEGER AS position_in_unique_constraint WHERE false;
CREATE VIEW osiris_information_schema.routines AS
SELECT ''::VARCHAR AS specific_name, ''::VARCHAR AS routine_schema, ''::VARCHAR AS routine_name,
       ''::VARCHAR AS routine_type, ''::VARCHAR AS data_type WHERE false;
CREATE VIEW osiris_information_schema.character_sets AS
SELECT NULL::VARCHAR AS character_set_catalog, NULL::VARCHAR AS character_set_schema,
       'UTF8' AS character_set_name, 'UCS' AS character_repertoire, 'UTF8' AS form_of_use,
       'osiris' AS default_collate_catalog, 'pg_catalog' AS default_collate_schema,
       'C' AS default_collate_name;
CREATE MACRO osiris_information_schema._pg_expandarray(arr) AS TABLE
    SELECT unnest(arr) AS x, unnest(generate_series(1, len(arr))) AS n;
